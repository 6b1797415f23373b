"""Window inputs: lenient datetimes at the edge, UTC inside, ordered windows only."""

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from rs_ondemand.models.staging import AuxipStagingInput, PripStagingInput
from rs_ondemand.models.timewindow import strftime_millis

BASE = {
    "env": {"owner_id": "alice"},
    "product_type": "S01SIWSLC",
    "prip_collection": "prip",
    "catalog_collection_identifier": "s1-l1",
}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2025-08-07T11:51:12.509000Z", datetime(2025, 8, 7, 11, 51, 12, 509000, tzinfo=UTC)),
        ("2025-08-07T13:51:12.509+02:00", datetime(2025, 8, 7, 11, 51, 12, 509000, tzinfo=UTC)),
        ("2025-08-07T11:51:12", datetime(2025, 8, 7, 11, 51, 12, tzinfo=UTC)),  # naive means UTC
        ("2025-08-07", datetime(2025, 8, 7, tzinfo=UTC)),
    ],
)
def test_datetimes_are_normalised_to_utc(given: str, expected: datetime) -> None:
    request = PripStagingInput.model_validate({**BASE, "start_datetime": given, "end_datetime": "2030-01-01"})
    assert request.start_datetime == expected


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2025-08-10", "2025-08-07", "must be after start_datetime"),
        ("2025-08-07", "2025-08-07", "must be after start_datetime"),
        ("yesterday", "2025-08-07", "not an ISO 8601"),
        ("2025-13-01", "2025-08-07", "not an ISO 8601"),
        (12345, "2025-08-07", "is not a datetime"),  # not seconds since 1970
        (1754560000.5, "2025-08-07", "is not a datetime"),
        (True, "2025-08-07", "is not a datetime"),
        ("0001-01-01", "2025-08-07", "out of range"),
        ("1899-12-31T23:59:59Z", "2025-08-07", "out of range"),
        ("2025-08-07", "2200-01-01", "out of range"),
    ],
)
def test_bad_windows_are_refused_with_a_specific_message(start: object, end: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PripStagingInput.model_validate({**BASE, "start_datetime": start, "end_datetime": end})


def test_a_number_is_refused_in_json_too() -> None:
    """Workflow inputs arrive as JSON (`temporal workflow start --input`): 12345 must not become 1970-01-01."""
    body = json.dumps({**BASE, "start_datetime": 12345, "end_datetime": "2025-08-07"})
    with pytest.raises(ValidationError, match="is not a datetime"):
        PripStagingInput.model_validate_json(body)


def test_the_range_ends_are_accepted() -> None:
    request = PripStagingInput.model_validate(
        {**BASE, "start_datetime": "1900-01-01", "end_datetime": "2199-12-31T23:59:59.999Z"}
    )
    assert (request.start_datetime.year, request.end_datetime.year) == (1900, 2199)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000Z"),
        (datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "0999-12-31T23:59:59.999Z"),
        (datetime(2024, 1, 2, 3, 4, 5, 123456), "2024-01-02T03:04:05.123Z"),  # naive is taken as UTC
    ],
)
def test_the_rs_format_always_has_a_four_digit_year(moment: datetime, text: str) -> None:
    assert strftime_millis(moment) == text


def test_product_type_cannot_smuggle_cql2() -> None:
    with pytest.raises(ValidationError, match="product_type"):
        AuxipStagingInput.model_validate(
            {
                **{k: v for k, v in BASE.items() if k != "prip_collection"},
                "product_type": "X' OR 1=1",
                "start_datetime": "2025-01-01",
                "end_datetime": "2025-01-02",
            }
        )
