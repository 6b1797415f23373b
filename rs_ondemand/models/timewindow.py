"""Datetimes at the boundary: dates or ISO 8601 strings in, tz-aware UTC inside, RS millisecond format out."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from pydantic import BeforeValidator


def to_utc(value: Any) -> Any:
    """Lenient at the edge (a date, an ISO string with or without offset), one shape inside (UTC datetime)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text) if "T" in text or " " in text else date.fromisoformat(text)
        except ValueError as err:
            raise ValueError(f"{value!r} is not an ISO 8601 date or datetime") from err
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    return value


UtcDatetime = Annotated[datetime, BeforeValidator(to_utc)]


def strftime_millis(value: datetime) -> str:
    """`2024-01-02T03:04:05.123Z`, the RS format (`rs_common.utils.strftime_millis`)."""
    value = value.astimezone(UTC) if value.tzinfo else value
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
