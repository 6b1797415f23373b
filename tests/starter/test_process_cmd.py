"""`rs-ondemand process dpr`: bad request files are refused before anything starts; request-derived ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rs_ondemand.models.dpr import DprProcessIn
from rs_ondemand.starter.request_ids import dpr_workflow_id
from tests.support.stack import run_cli

DEMO = Path(__file__).resolve().parents[2] / "samples" / "dpr-demo.json"


def demo(**changes: Any) -> DprProcessIn:
    return DprProcessIn.model_validate(json.loads(DEMO.read_text()) | changes)


def no_stack(tmp_path: Path) -> dict[str, str]:
    return {"TEMPORAL_ADDRESS": "127.0.0.1:1", "RS_STACK_DIR": str(tmp_path / "no-stack")}


async def test_an_invalid_request_is_refused_in_one_line_and_nothing_starts(tmp_path: Path) -> None:
    bad = json.loads(DEMO.read_text()) | {"end_datetime": "2024-11-13T00:00:00Z", "priority": "urgent"}
    del bad["dask_cluster_label"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    code, out, err = await run_cli("process", "dpr", str(path), "--wait", **no_stack(tmp_path))
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()  # one line, no traceback, no attempt to reach the (absent) stack
    assert line.startswith("error: invalid request:")
    assert "dask_cluster_label: Field required" in line and "priority:" in line


async def test_an_unreadable_or_malformed_file_is_refused_in_one_line(tmp_path: Path) -> None:
    code, _, err = await run_cli("process", "dpr", str(tmp_path / "missing.json"), **no_stack(tmp_path))
    assert code == 2 and err.strip().startswith("error: cannot read") and len(err.strip().splitlines()) == 1
    broken = tmp_path / "broken.json"
    broken.write_text('{"env": ')
    code, _, err = await run_cli("process", "dpr", str(broken), **no_stack(tmp_path))
    assert code == 2 and "Invalid JSON" in err and len(err.strip().splitlines()) == 1


def test_the_same_request_has_the_same_id_and_a_different_one_another() -> None:
    request = demo()
    workflow_id = dpr_workflow_id(request)
    assert workflow_id.startswith("dpr-processing/operator/demo/demo_full/S1A_20241114143038056552/")
    assert dpr_workflow_id(demo()) == workflow_id
    # The same request written differently: another UTC offset, the listed form of the aux map; options say how
    # to run it, not what.
    assert (
        dpr_workflow_id(
            demo(
                start_datetime="2024-11-14T15:30:38.477+01:00",
                auxiliary_product_to_collection_identifier=[{"*": "s1-aux"}],
                options={"step_attempts": 3},
            )
        )
        == workflow_id
    )
    different = [
        demo(end_datetime="2024-11-14T14:33:22.663Z"),
        demo(generated_product_to_collection_identifier=[{"DEMOL0": ["S01DEMOL0", "other"]}]),
        demo(dry_run=True),
        demo(tasktable={"units": []}),
        demo(env={"owner_id": "someone"}),
    ]
    ids = {dpr_workflow_id(request) for request in different}
    assert workflow_id not in ids and len(ids) == len(different)
