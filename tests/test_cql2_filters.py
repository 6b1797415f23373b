"""The ValCover filter is the original's `create_valcover_filter`, to the character."""

from datetime import UTC, datetime

import cql2

from rs_ondemand.cql2_filters import valcover_filter
from rs_ondemand.models.timewindow import strftime_millis


def test_strftime_millis_is_the_rs_format() -> None:
    assert strftime_millis(datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)) == "2024-01-02T03:04:05.123Z"
    assert strftime_millis(datetime(2024, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)) == "2024-01-02T03:04:05.999Z"


def test_valcover_filter_is_exactly_the_original() -> None:
    start, end = datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC)
    assert valcover_filter(start, end, "S01SIWSLC") == {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "product:type"}, "S01SIWSLC"]},
            {
                "op": "t_contains",
                "args": [
                    {"interval": [{"property": "start_datetime"}, {"property": "end_datetime"}]},
                    {"interval": ["2024-01-02T03:04:05.123Z", "2024-01-03T00:00:00.000Z"]},
                ],
            },
        ],
    }
    cql2.Expr(valcover_filter(start, end, "X")).validate()  # standard CQL2-JSON


def test_filters_of_early_years_stay_standard_cql2() -> None:
    """`strftime("%Y")` writes the year 999 as `999`, which no CQL2 parser takes as a timestamp."""
    start, end = datetime(999, 1, 2, tzinfo=UTC), datetime(999, 1, 3, tzinfo=UTC)
    interval = valcover_filter(start, end, "X")["args"][1]["args"][1]["interval"]
    assert interval == ["0999-01-02T00:00:00.000Z", "0999-01-03T00:00:00.000Z"]
    cql2.Expr(valcover_filter(start, end, "X")).validate()
