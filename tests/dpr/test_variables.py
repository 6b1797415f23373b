"""Tests of `{external_variable.X}` substitution (docs/rs-compatibility.md#external-variables)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from rs_ondemand.dpr import TaskTableError
from rs_ondemand.dpr.variables import format_variable, substitute


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("start_datetime", datetime(2023, 10, 3, 11, tzinfo=UTC), "2023-10-03T11:00:00.000Z"),
        ("start_datetime", datetime(2023, 10, 3, 13, tzinfo=timezone(timedelta(hours=2))), "2023-10-03T11:00:00.000Z"),
        ("start_datetime", "2023-10-03T11:00:00.000Z", "2023-10-03T11:00:00.000Z"),
        ("end_datetime", date(2025, 10, 3), "2025-10-03T00:00:00.000Z"),
        ("reference_date", datetime(2023, 10, 3, 11, 0, 0, 999999), "2023-10-03T11:00:00.999Z"),
        ("reference_date", "2023-10-03", "2023-10-03"),
        ("satellite", "S1A", "S1A"),
        ("count", 3, 3),
    ],
)
def test_format_variable(name: str, value: Any, expected: Any) -> None:
    assert format_variable(name, value) == expected


@pytest.mark.parametrize("value", ["soon", 1700000000, True])
def test_non_datetime_value_of_a_datetime_variable(value: Any) -> None:
    with pytest.raises(TaskTableError, match=r'^External variable "start_datetime" is not a datetime: '):
        format_variable("start_datetime", value)


def test_substitute_walks_every_container() -> None:
    obj = {"a": ["{external_variable.x}", ("{external_variable.x}/b",)], "{external_variable.x}": None, "n": 1.5}
    assert substitute(obj, {"x": 2}) == {"a": [2, ["2/b"]], "{external_variable.x}": None, "n": 1.5}


def test_only_well_formed_placeholders_are_replaced() -> None:
    text = "{external_variable.} {external_variable.1x} {external_variable.x-y} {EXTERNAL_VARIABLE.x}"
    assert substitute(text, {"x": "v", "1x": "v"}) == text
