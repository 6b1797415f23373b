"""Tests of the task-table models and the `io` normalisation (rs-reference.md §1.3)."""

from __future__ import annotations

from typing import Any

import pytest

from rs_ondemand.dpr import TaskTableError, parse_tasktable
from rs_ondemand.dpr.tasktable import Alternative, normalise_io
from tests.dpr._fixtures import RS_TASKTABLES, load


@pytest.mark.parametrize("table", RS_TASKTABLES)
def test_every_rs_table_parses(table: str) -> None:
    """Every reference table fits the lenient model, whichever `io` shape it has."""
    data = load(table)
    tasktable = parse_tasktable(data)
    assert [u.name for u in tasktable.units] == [u["name"] for u in data["units"]]
    assert {e.name for e in tasktable.io} == {e["name"] for e in normalise_io(data["io"]) or []}
    for pipeline in tasktable.pipelines:
        assert all(step.unit_name for step in pipeline.steps)
    assert tasktable.query("LatestValCover") is not None


def test_dict_io_is_flattened_in_section_order_and_unknown_keys_kept() -> None:
    data = load("tasktable-s1-l0.json")
    tasktable = parse_tasktable(data)
    assert [e.name for e in tasktable.io] == [
        "S1CADUS",
        "osf",
        "fro",
        "S01SARRAW",
        "S01GPSRAW",
        "S01HKMRAW",
        "S01AISRAW",
    ]
    fro = tasktable.io_entry("fro")
    assert fro is not None and fro.engine == "cpm_safe"
    assert fro.alternatives[0].query.parameters["dTa"] == 345600
    sar = tasktable.io_entry("S01SARRAW")
    assert sar is not None and sar.model_extra == {"writer_params": data["io"]["output"][0]["writer_params"]}
    assert tasktable.model_extra is not None and "external_modules" in tasktable.model_extra
    assert tasktable.pipelines[0].steps[0].parameters == data["pipelines"][0]["steps"][0]["parameters"]


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


def test_last_io_entry_and_query_win() -> None:
    tasktable = parse_tasktable(
        {
            "units": [],
            "io": [{"name": "A", "type": "first"}, {"name": "A", "type": "second"}],
            "queries": [{"name": "Q", "stac": {"limit": 1}}, {"name": "Q", "stac": {"limit": 2}}],
        }
    )
    entry, query = tasktable.io_entry("A"), tasktable.query("Q")
    assert entry is not None and entry.type == "second"
    assert query is not None and query.stac == {"limit": 2}
    assert tasktable.io_entry("B") is None and tasktable.query("R") is None


def test_alternative_defaults() -> None:
    alternative = Alternative.model_validate({"query": {"name": "LatestValCover"}})
    assert (alternative.order, alternative.timeout_seconds, alternative.query.parameters) == (None, 0, {})


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "Invalid task table: <root>: "),
        ({"io": []}, "Invalid task table: units: Field required"),
        ({"units": [{"name": "u"}], "io": []}, "units.0.module: Field required"),
        ({"units": [], "io": {"adfs": {}}}, 'Invalid "io" section "adfs"'),
    ],
)
def test_parse_errors_are_task_table_errors(data: Any, fragment: str) -> None:
    with pytest.raises(TaskTableError) as caught:
        parse_tasktable(data)
    assert fragment in str(caught.value)
