"""Which processors the EOPF environment runs, asked to the environment itself: `rs-ondemand processors list`, and a
processor known only by its entry point, whose task table it serves through EOPF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rs_ondemand.activities.eopf_env import eopf_processors
from rs_ondemand.dpr.registry import get_tasktable, tasktable_of
from tests.processors._stub_units import write_stub_units
from tests.support.stack import run_cli

pytestmark = pytest.mark.timeout(180)


async def test_processors_list_says_which_run_and_which_only_plan(eopf_executable: Path) -> None:
    code, out, err = await run_cli("processors", "list", "--json")
    assert code == 0, err
    listing = json.loads(out)
    processors = {entry["name"]: entry for entry in listing["processors"]}
    assert processors["demo"] | {"units": []} == {
        "name": "demo",
        "source": "registry",
        "runnable": True,
        "why_not": None,
        "units": [],
        "served_tasktable": "same",  # the demo's units serve the shipped table through EOPF
    }
    assert processors["demo"]["units"] == [
        "rs_demo_processor.units.DemoL0Unit",
        "rs_demo_processor.chain.DemoL1Unit",
        "rs_demo_processor.chain.DemoQuicklookUnit",
    ]
    # The RS processors are shipped as tables only: planned, never run here (samples/dpr-s1-l0.json).
    s1_l0 = processors["s1_l0"]
    assert (s1_l0["runnable"], s1_l0["source"]) == (False, "registry")
    assert s1_l0["why_not"] == "cannot import l0.s1.s1_l0_processor: ModuleNotFoundError: No module named 'l0'"
    assert not processors["s1_ard"]["runnable"]
    assert "local" in listing["dask_cluster_labels"]


async def test_a_processor_declared_by_its_entry_point_serves_its_own_task_table(
    eopf_executable: Path, tmp_path: Path
) -> None:
    """Installed in the EOPF environment with an `rs_ondemand.processors` entry point and no shipped table: it is
    known by the table its unit class gives (`get_tasktable_description`, what `eopf trigger tasktable` prints)."""
    table = get_tasktable("mockup") | {"tasktable": {"name": "stub", "version": "1.0"}}
    table["units"] = [unit | {"module": "stubproc.units"} for unit in table["units"]]
    write_stub_units(table, tmp_path)
    unit_class = table["units"][0]["name"]
    units = tmp_path / "stubproc" / "units.py"
    units.write_text(
        units.read_text().replace(
            "PROCESSOR_CONTRACT = False", 'PROCESSOR_NAME = "Stub"\n    PROCESSOR_CONTRACT = False'
        )
    )
    (tmp_path / "stubproc" / "tasktables").mkdir()
    (tmp_path / "stubproc" / "tasktables" / "stub_default.json").write_text(json.dumps(table))
    info = tmp_path / "stubproc-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: stubproc\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[rs_ondemand.processors]\nstub = stubproc.units:{unit_class}\n")

    catalog = await eopf_processors(eopf_executable, extra_env={"PYTHONPATH": str(tmp_path)})

    stub = catalog["stub"]
    assert (stub.source, stub.runnable, stub.why_not) == ("processor", True, None)
    assert stub.units == [f"stubproc.units.{unit_class}"]
    assert tasktable_of(catalog, "stub") == table
