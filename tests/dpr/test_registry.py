"""Tests of the processor task-table registry (`rs_ondemand.dpr.registry`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rs_ondemand.dpr import TaskTableError, build_unit_list, registry
from rs_ondemand.dpr.registry import (
    DEMO_PROCESSOR,
    UnknownProcessorError,
    available_processors,
    get_tasktable,
    load_tasktable_file,
    processor_catalog,
    tasktable_of,
    unit_classes,
)
from tests.support.tasktables import DATA_DIR

SHIPPED = {
    "mockup": "TaskTable_MOCKUP_generated_by_rs_python_v1.json",
    "s1_l0": "TaskTable_S1_L0_generated_by_rs_python_v1.json",
    "s1_ard": "tasktable-s1-ard-test.json",
}


@pytest.mark.parametrize(("processor", "reference"), SHIPPED.items())
def test_shipped_tables_are_the_reference_files(processor: str, reference: str) -> None:
    """The shipped tables are byte-identical to the RS reference data."""
    shipped = registry.TASKTABLES_DIR / f"{processor}.json"
    assert shipped.read_bytes() == (DATA_DIR / reference).read_bytes()
    assert get_tasktable(processor) == json.loads(shipped.read_text(encoding="utf-8"))


@pytest.mark.parametrize("processor", sorted(SHIPPED))
def test_every_shipped_pipeline_builds(processor: str) -> None:
    tasktable = get_tasktable(processor)
    for pipeline in tasktable["pipelines"]:
        assert build_unit_list(tasktable, pipeline["name"], None, None, external_variables={})


def test_available_processors() -> None:
    assert set(SHIPPED) <= set(available_processors())
    assert available_processors() == sorted(available_processors())


def test_every_caller_gets_a_fresh_copy() -> None:
    """Callers cannot change what the next caller gets."""
    first = get_tasktable("mockup")
    first["units"].clear()
    assert get_tasktable("mockup")["units"]


@pytest.mark.parametrize("name", ["nope", "../s1_l0", "s1_l0.json", ""])
def test_unknown_processor(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "available_processors", lambda: ["mockup", "s1_l0"])
    with pytest.raises(UnknownProcessorError) as caught:
        get_tasktable(name)
    assert str(caught.value) == f'Unknown processor "{name}". Available processors: "mockup", "s1_l0".'
    assert isinstance(caught.value, TaskTableError)


def test_any_json_in_the_folder_is_picked_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A table dropped into the folder (as `demo.json` was) needs no code change."""
    (tmp_path / f"{DEMO_PROCESSOR}.json").write_text('{"units": [], "io": [], "pipelines": []}', encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a table", encoding="utf-8")
    monkeypatch.setattr(registry, "TASKTABLES_DIR", tmp_path)
    assert available_processors() == ["demo"]
    assert get_tasktable("demo") == {"units": [], "io": [], "pipelines": []}


def test_empty_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "TASKTABLES_DIR", tmp_path)
    with pytest.raises(UnknownProcessorError, match=r'Available processors: "<none>"\.$'):
        get_tasktable("mockup")


class TestLoadTasktableFile:
    def test_reads_a_table(self) -> None:
        assert load_tasktable_file(DATA_DIR / "tasktable-s1-l0.json")["io"]["input"][0]["name"] == "S1CADUS"

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(TaskTableError, match=r"^Cannot read task table file '.*nope\.json': No such file"):
            load_tasktable_file(tmp_path / "nope.json")

    def test_directory(self, tmp_path: Path) -> None:
        with pytest.raises(TaskTableError, match=r"^Cannot read task table file"):
            load_tasktable_file(tmp_path)

    @pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe{}"])
    def test_not_json(self, tmp_path: Path, content: bytes) -> None:
        path = tmp_path / "bad.json"
        path.write_bytes(content)
        with pytest.raises(TaskTableError, match=r"bad\.json' is not valid JSON: "):
            load_tasktable_file(str(path))

    def test_root_not_an_object(self, tmp_path: Path) -> None:
        path = tmp_path / "list.json"
        path.write_text("[]", encoding="utf-8")
        with pytest.raises(TaskTableError, match="the root must be a JSON object"):
            load_tasktable_file(path)


# --- The catalog merged from the shipped tables and the EOPF environment's answer ----------------------------------


def test_without_an_eopf_environment_every_shipped_processor_is_plan_only() -> None:
    catalog = processor_catalog(None)
    assert {name for name, info in catalog.items() if info.runnable} == set()
    assert catalog["demo"].why_not == "no EOPF environment"
    assert tasktable_of(catalog, "demo") == get_tasktable("demo")


def test_a_shipped_table_wins_over_what_the_processor_serves() -> None:
    served = get_tasktable("demo") | {"pipelines": []}
    units = {f"{module}.{cls}": None for module, cls in unit_classes(get_tasktable("demo"))}
    catalog = processor_catalog({"demo": {"units": units, "tasktable": served, "entry_point": "m:C"}})
    assert (catalog["demo"].source, catalog["demo"].runnable, catalog["demo"].served_tasktable) == (
        "registry",
        True,
        "differs",
    )
    assert tasktable_of(catalog, "demo") == get_tasktable("demo")


def test_a_processor_that_serves_no_table_cannot_be_planned() -> None:
    catalog = processor_catalog({"nothing": {"units": {}, "tasktable": None, "tasktable_error": "KeyError: no file"}})
    assert catalog["nothing"].why_not == "serves no task table (KeyError: no file)"
    with pytest.raises(UnknownProcessorError, match='Unknown processor "nothing"'):
        tasktable_of(catalog, "nothing")
