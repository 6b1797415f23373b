"""UTC datetime parsing and the ISO formats the stations emit."""

import re
from datetime import UTC, datetime

_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def looks_like_datetime(value: str) -> bool:
    """Whether a string is an ISO 8601 date-time (the only datetime form the stations use)."""
    return bool(_ISO_DATETIME.match(value))


def parse_datetime(value: str) -> datetime:
    """Parse an ISO 8601 date-time; a value without offset is taken as UTC. Raises ValueError."""
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def iso_ms(value: datetime) -> str:
    """`2024-11-14T14:31:11.032Z`: the OData form, millisecond precision and a `Z`."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def compact(value: datetime) -> str:
    """`20241114T143111`: the form used inside product names."""
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%S")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A tz-aware UTC datetime (shorthand for seeded data tables)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
