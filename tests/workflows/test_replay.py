"""Recorded histories replay against the current workflow code: a change that breaks determinism fails here.

Re-record (after a deliberate, patched change) with `RS_RECORD_HISTORIES=1 pytest tests/workflows/test_replay.py`.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from rs_ondemand.client import DATA_CONVERTER
from rs_ondemand.worker import WORKFLOWS
from rs_ondemand.workflows.dpr_processing import DprProcessing
from tests._requests import demo_request, stage_sample_session

HISTORIES = Path(__file__).with_name("histories")


@pytest.mark.skipif(not os.environ.get("RS_RECORD_HISTORIES"), reason="records histories only when asked")
async def test_record_histories(client: Client, task_queue: str, collection: str) -> None:
    handle = client.get_workflow_handle(await stage_sample_session(client, task_queue, "replay", collection))
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / "cadip_staging.json").write_text((await handle.fetch_history()).to_json())
    (child,) = [w async for w in client.list_workflows(f"ParentWorkflowId = '{handle.id}'")]
    history = await client.get_workflow_handle(child.id).fetch_history()
    (HISTORIES / "staging.json").write_text(history.to_json())
    # Replay needs the original ids (child ids and manifest keys derive from them).
    ids = {"cadip_staging": handle.id, "staging": child.id}
    (HISTORIES / "workflow_ids.json").write_text(json.dumps(ids, indent=1))


@pytest.mark.skipif(not os.environ.get("RS_RECORD_HISTORIES"), reason="records histories only when asked")
async def test_record_dpr_histories(client: Client, task_queue: str, collection: str) -> None:
    """A whole demo run: `DprProcessing`, and its `ProcessingUnit` with both orbit alternatives tried."""
    await stage_sample_session(client, task_queue, "replay", collection)
    request = demo_request("replay", collection)
    handle = await client.start_workflow(DprProcessing.run, request, id=f"record-{uuid.uuid4()}", task_queue=task_queue)
    await handle.result()
    (unit,) = [w async for w in client.list_workflows(f"ParentWorkflowId = '{handle.id}'")]
    ids = json.loads((HISTORIES / "workflow_ids.json").read_text())
    for name, workflow_id in (("dpr_processing", handle.id), ("processing_unit", unit.id)):
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        (HISTORIES / f"{name}.json").write_text(history.to_json())
        ids[name] = workflow_id
    (HISTORIES / "workflow_ids.json").write_text(json.dumps(ids, indent=1))


@pytest.mark.parametrize("name", ["cadip_staging", "staging", "dpr_processing", "processing_unit"])
async def test_recorded_history_replays(name: str) -> None:
    path = HISTORIES / f"{name}.json"
    workflow_id = json.loads((HISTORIES / "workflow_ids.json").read_text())[name]
    history = WorkflowHistory.from_json(workflow_id, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    await replayer.replay_workflow(history)  # raises on any non-determinism
