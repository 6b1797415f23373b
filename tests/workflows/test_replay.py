"""Recorded histories replay against the current workflow code: a change that breaks determinism fails here.

Re-record (after a deliberate, patched change) with `RS_RECORD_HISTORIES=1 pytest tests/workflows/test_replay.py`.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from rs_ondemand.client import DATA_CONVERTER
from rs_ondemand.models.staging import AuxipStagingInput, WindowStagingResult
from rs_ondemand.worker import WORKFLOWS
from rs_ondemand.workflows import _limits
from rs_ondemand.workflows.dpr_processing import DprProcessing
from rs_ondemand.workflows.scheduled_staging import ScheduledStaging
from rs_ondemand.workflows.window_staging import OnDemandAuxipStaging, OnDemandPripStaging
from tests.support.prip import WINDOW, add_prip_products, add_published_products, prip_request, scheduled_request
from tests.support.sample_requests import demo_request, stage_sample_session
from tests.support.stack import Simulator

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


@pytest.mark.skipif(not os.environ.get("RS_RECORD_HISTORIES"), reason="records histories only when asked")
async def test_record_window_histories(client: Client, task_queue: str, simulator: Simulator, collection: str) -> None:
    """`OnDemandPripStaging` over two result pages (101 products) and the `Staging` child of its last page (one
    product), `OnDemandAuxipStaging` of the seeded orbit files, and a `ScheduledStaging` run started by hand."""
    records: dict[str, str] = {}

    prip_type = add_prip_products(simulator, 101)
    prip = await client.start_workflow(
        OnDemandPripStaging.run,
        prip_request(prip_type, f"{collection}-prip", *WINDOW),
        id=f"record-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    result: WindowStagingResult = await prip.result()
    assert result.staging.items_staged == 101
    children = sorted([w.id async for w in client.list_workflows(f"ParentWorkflowId = '{prip.id}'")])
    assert len(children) == 2, children  # one per result page of 100
    records |= {"prip_staging": prip.id, "prip_page_staging": children[-1]}

    start, end = datetime(2024, 11, 14, 14, 30, tzinfo=UTC), datetime(2024, 11, 14, 14, 35, tzinfo=UTC)
    auxip = await client.start_workflow(
        OnDemandAuxipStaging.run,
        AuxipStagingInput.for_window("alice", "AUX_RESORB", f"{collection}-auxip", start, end),
        id=f"record-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    assert (await auxip.result()).staging.items_staged > 0
    records["auxip_staging"] = auxip.id

    # Started by hand: its window ends at its start, and holds the 3 products published 3h39m to 59m before.
    scheduled_type = f"S{uuid.uuid4().hex[:8].upper()}"
    add_published_products(simulator, scheduled_type, datetime.now(UTC) - timedelta(hours=5), 3)
    scheduled = await client.start_workflow(
        ScheduledStaging.run,
        scheduled_request(scheduled_type, f"{collection}-sched", every_s=4 * 3600, overlap_s=60),
        id=f"record-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    assert (await scheduled.result()).staging.items_staged == 3
    records["scheduled_staging"] = scheduled.id

    ids = json.loads((HISTORIES / "workflow_ids.json").read_text())
    for name, workflow_id in records.items():
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        (HISTORIES / f"{name}.json").write_text(history.to_json())
        ids[name] = workflow_id
    (HISTORIES / "workflow_ids.json").write_text(json.dumps(ids, indent=1))


@pytest.mark.skipif(not os.environ.get("RS_RECORD_HISTORIES"), reason="records histories only when asked")
async def test_record_pages_histories(
    client: Client, task_queue: str, simulator: Simulator, collection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`StagingPages` staging a window of two result pages (101 products) one page a run: its first run (reads
    its page from the search's page list, continues as new) and its last."""
    monkeypatch.setattr(_limits, "PAGES_PER_RUN", 1)
    prip = await client.start_workflow(
        OnDemandPripStaging.run,
        prip_request(add_prip_products(simulator, 101), f"{collection}-pages", *WINDOW),
        id=f"record-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    assert (await prip.result()).staging.items_staged == 101
    (pages,) = {w.id async for w in client.list_workflows(f"ParentWorkflowId = '{prip.id}'")}  # (both runs)
    runs = sorted([w async for w in client.list_workflows(f"WorkflowId = '{pages}'")], key=lambda w: w.start_time)
    assert len(runs) == 2
    ids = json.loads((HISTORIES / "workflow_ids.json").read_text())
    for name, run in (("staging_pages_first_run", runs[0]), ("staging_pages_last_run", runs[1])):
        history = await client.get_workflow_handle(pages, run_id=run.run_id).fetch_history()
        (HISTORIES / f"{name}.json").write_text(history.to_json())
        ids[name] = pages
    (HISTORIES / "workflow_ids.json").write_text(json.dumps(ids, indent=1))


@pytest.mark.parametrize(
    "name",
    [
        "cadip_staging",
        "staging",
        "dpr_processing",
        "processing_unit",
        "prip_staging",
        "prip_page_staging",
        "auxip_staging",
        "scheduled_staging",
        "staging_pages_first_run",
        "staging_pages_last_run",
    ],
)
async def test_recorded_history_replays(name: str) -> None:
    path = HISTORIES / f"{name}.json"
    workflow_id = json.loads((HISTORIES / "workflow_ids.json").read_text())[name]
    history = WorkflowHistory.from_json(workflow_id, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    await replayer.replay_workflow(history)  # raises on any non-determinism
