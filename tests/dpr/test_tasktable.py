"""The `io` normalisation (docs/rs-compatibility.md#task-tables): a list, or an object of sections flattened in
order."""

from __future__ import annotations

from typing import Any

import pytest

from rs_ondemand.dpr import TaskTableError
from rs_ondemand.dpr.tasktable import normalise_io
from tests.support.tasktables import load


@pytest.mark.parametrize(
    ("io", "expected"),
    [
        ([{"name": "a"}], [{"name": "a"}]),
        ({"output": [3], "extra": [4], "adfs": [2], "input": [1]}, [1, 2, 3, 4]),
        ({}, []),
        (None, None),
        ("io", None),
    ],
)
def test_normalise_io(io: Any, expected: list[Any] | None) -> None:
    assert normalise_io(io) == expected


def test_dict_io_is_flattened_in_section_order() -> None:
    io = normalise_io(load("tasktable-s1-l0.json")["io"]) or []
    assert [entry["name"] for entry in io] == [
        "S1CADUS",
        "osf",
        "fro",
        "S01SARRAW",
        "S01GPSRAW",
        "S01HKMRAW",
        "S01AISRAW",
    ]


def test_a_section_that_is_not_a_list_is_a_task_table_error() -> None:
    with pytest.raises(TaskTableError, match=r'Invalid "io" section "adfs" in task table: expected a list\.'):
        normalise_io({"adfs": {}})
