"""Requests split across histories (workflows/_limits.py, scaled down here): a window's pages through a
`StagingPages` child that continues as new, a session's many chunks transferred in parts; progress and `retry`
keep working across the continued runs and the parts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from rs_ondemand.config import Settings
from rs_ondemand.models.progress import State
from rs_ondemand.models.staging import CadipStagingResult, PagesStagingInput, StagingResult, WindowStagingResult
from rs_ondemand.names import PRIP_STAGING, RETRY_SIGNAL, STAGING, STAGING_PAGES
from rs_ondemand.workflows import _limits
from tests.support.cadip_staging import assert_collection_staged, new_session, progress_until, start_staging
from tests.support.prip import OWNER, WINDOW, add_prip_products, prip_request
from tests.support.stack import Simulator


async def runs_of(client: Client, workflow_id: str) -> list[Any]:
    """Every run of `workflow_id` (a workflow that continued as new has several), oldest first."""
    runs = [run async for run in client.list_workflows(f'WorkflowId = "{workflow_id}"')]
    return sorted(runs, key=lambda run: run.start_time)


async def events_of(client: Client, workflow_id: str, run_id: str | None = None) -> list[Any]:
    return [e async for e in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events()]


async def test_a_window_of_many_pages_continues_as_new_and_retry_reaches_a_later_run(
    client: Client,
    task_queue: str,
    settings: Settings,
    simulator: Simulator,
    s3: Any,
    collection: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """250 products (3 pages), one page per run: `StagingPages` runs three times. The station fails during the
    second run beyond the request's step attempts: the request shows the child's wait, `retry` sent to the
    request reaches the waiting `Staging` child through the continued run, and every product is published once."""
    monkeypatch.setattr(_limits, "PAGES_PER_RUN", 1)
    product_type = add_prip_products(simulator, 250)
    request = prip_request(product_type, collection, *WINDOW, step_attempts=2, max_parallel_transfers=4)
    simulator.faults(prip={"latency_ms": 30})
    handle: WorkflowHandle[Any, WindowStagingResult] = await client.start_workflow(
        PRIP_STAGING, request, id=f"test-split-{uuid.uuid4()}", task_queue=task_queue, result_type=WindowStagingResult
    )
    pages_id = f"{handle.id}/pages-{collection}"
    try:
        # The first page is published, so the first run has continued as new: the station goes down.
        await progress_until(handle, lambda p: p.items_done >= 100)
        simulator.faults(prip={"outage": True})
        waiting = await progress_until(handle, lambda p: p.state == State.WAITING_FOR_OPERATOR, within_s=120)
    finally:
        simulator.clear_faults()
    assert waiting.waiting_steps and all(step.startswith("stream ") for step in waiting.waiting_steps)
    assert waiting.last_error and "503" in waiting.last_error
    assert 100 <= waiting.items_done < 250 and waiting.items_total == 250
    assert len(await runs_of(client, pages_id)) >= 2  # the wait is in a continued run

    await handle.signal(RETRY_SIGNAL)
    result = await handle.result()
    assert (result.items_found, result.staging.items_staged, result.staging.items_skipped) == (250, 250, 0)
    assert result.staging.assets_staged == 250
    final = await progress_until(handle, lambda p: p.state == State.COMPLETED)
    assert (final.items_done, final.assets_done, final.items_total) == (250, 250, 250)
    assert final.waiting_steps == [] and final.last_error is None

    runs = await runs_of(client, pages_id)
    assert len(runs) == 3
    for number, run in enumerate(runs):
        events = await events_of(client, pages_id, run.run_id)
        if number < 2:
            assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        # Each run's input names the search's page list and its first page: no page references in history.
        (payload,) = events[0].workflow_execution_started_event_attributes.input.payloads
        started = PagesStagingInput.model_validate_json(payload.data)
        assert started.pages == [] and started.page_list is not None and started.page_list.pages == 3
        assert (started.first_page, started.items) == (number, 250)
    staged = assert_collection_staged(settings, s3, collection, set(result.staging.staged), owner=OWNER)
    assert len(staged) == 250


async def test_a_session_of_many_chunks_is_transferred_in_parts(
    client: Client,
    task_queue: str,
    settings: Settings,
    simulator: Simulator,
    s3: Any,
    collection: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """12 chunks, 5 assets per history: the session's `Staging` child has three parts transfer 5, 5 and 2 of
    them, then publishes the session once, every chunk verified."""
    monkeypatch.setattr(_limits, "ASSETS_PER_CHILD", 5)
    session = new_session(simulator, 12, chunk_size=1024)
    handle = await start_staging(client, task_queue, session, collection)
    result: CadipStagingResult = await handle.result()
    assert (result.staging.items_staged, result.staging.assets_staged) == (1, 12)
    final = await progress_until(handle, lambda p: p.state == State.COMPLETED)
    assert (final.assets_done, final.assets_total, final.bytes_done) == (12, 12, 12 * 1024)

    (page,) = [w async for w in client.list_workflows(f'ParentWorkflowId = "{handle.id}"')]
    parts = sorted([w.id async for w in client.list_workflows(f'ParentWorkflowId = "{page.id}"')])
    assert parts == [f"{page.id}/part-{n:03d}" for n in range(3)]
    streamed = []
    for part in parts:
        events = await events_of(client, part)
        assert events[0].workflow_execution_started_event_attributes.workflow_type.name == STAGING
        streamed.append((await client.get_workflow_handle(part, result_type=StagingResult).result()).assets_staged)
    assert streamed == [5, 5, 2]
    assert_collection_staged(settings, s3, collection, {session}, owner="reliability", request_id=handle.id)


def test_the_split_points_stay_well_below_temporal_limits() -> None:
    """About 22 events per page in a run of `StagingPages`, about 6 per asset in a `Staging` history."""
    assert _limits.PAGES_PER_RUN * 22 < 5_000 and _limits.ASSETS_PER_CHILD * 6 < 5_000
    assert STAGING_PAGES == "StagingPages"
