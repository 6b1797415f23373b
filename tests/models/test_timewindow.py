"""Window inputs: lenient datetimes at the edge, UTC inside, ordered windows only."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from rs_ondemand.models.staging import AuxipStagingInput, PripStagingInput

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
    ],
)
def test_bad_windows_are_refused_with_a_specific_message(start: str, end: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PripStagingInput.model_validate({**BASE, "start_datetime": start, "end_datetime": end})


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
