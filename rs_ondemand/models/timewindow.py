"""Datetimes at the boundary: dates or ISO 8601 strings in, tz-aware UTC inside, RS millisecond format out."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""Requests name instants in [EARLIEST, LATEST): no Earth-observation product is older or lives that long, so a
time outside is a typo (`0001-01-01`, `20250-01-01`, a number of seconds taken for a date)."""


def to_utc(value: Any) -> datetime:
    """Lenient about the shape (a date, an ISO string with or without offset), strict about the type: anything
    else, numbers included, is refused rather than read as seconds since 1970. One shape inside: UTC datetime."""
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
    raise ValueError(f"{value!r} is not a datetime: give an ISO 8601 date or datetime as a string")


def in_sane_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(
            f"{strftime_millis(value)} is out of range: datetimes go from {EARLIEST.year} to {LATEST.year - 1}"
        )
    return value


def parse_datetime(value: Any) -> datetime:
    """A datetime as requests take it (`to_utc`, then the sane range); ValueError says what is wrong."""
    return in_sane_range(to_utc(value))


UtcDatetime = Annotated[datetime, BeforeValidator(to_utc), AfterValidator(in_sane_range)]
"""A request's datetime: an ISO 8601 date or datetime (naive means UTC) in the sane range, held in UTC."""


def strftime_millis(value: datetime) -> str:
    """`2024-01-02T03:04:05.123Z`, the RS format (`rs_common.utils.strftime_millis`), the year always four
    digits (C `strftime("%Y")` leaves `1` for the year 1 on Linux, which no station parses)."""
    value = value.astimezone(UTC) if value.tzinfo else value
    return f"{value.year:04d}-{value:%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"
