"""Crash tests of the scaled-up staging: the worker process is SIGKILLed in the middle of a batch of small files,
and while a window's `StagingPages` continues as new. The request completes on a new worker process; nothing that
was finished is transferred again, and nothing is published unverified or twice."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from rs_ondemand.bench.chaos.procs import kill_worker
from rs_ondemand.config import Settings
from rs_ondemand.models.progress import State
from rs_ondemand.models.staging import CadipStagingResult, WindowStagingResult
from rs_ondemand.names import PRIP_STAGING
from tests.support.cadip_staging import (
    OWNER,
    assert_collection_staged,
    assert_session_staged,
    catalog_items,
    new_session,
    progress_until,
    result_of,
    start_staging,
    start_worker,
)
from tests.support.prip import WINDOW, add_prip_products, prip_request
from tests.support.stack import Simulator
from tests.support.storage import staged_keys as stored_verified

pytestmark = pytest.mark.timeout(400)

SHORT_HEARTBEATS = "tests.reliability.short_heartbeats_worker"
"""The worker, its heartbeat timeouts scaled down: the batches the killed worker lost are retried within seconds."""


def staged_keys(s3: Any, settings: Settings, collection: str, owner: str = OWNER) -> set[str]:
    """The objects a transfer finished under the collection."""
    return stored_verified(s3, settings.s3.rs_bucket, f"{owner}/{collection}/")


async def test_a_worker_killed_mid_batch_transfers_only_what_was_not_finished(
    client: Client, settings: Settings, simulator: Simulator, s3: Any, collection: str, tmp_path: Path
) -> None:
    """24 small chunks in batches of 3, the station slow: the worker dies when some files of the batches are
    stored and others not. The retried batches skip the stored ones (found verified in S3): after the restart
    the station serves exactly the files that were not stored, and the session is published once, verified."""
    chunks = 24
    session = new_session(simulator, chunks, chunk_size=64 * 1024)
    queue, log = f"tq-rel-batch-{uuid.uuid4()}", tmp_path / "worker.log"
    worker = await start_worker(queue, log, module=SHORT_HEARTBEATS)
    try:
        simulator.faults(cadip={"latency_ms": 400})
        handle = await start_staging(client, queue, session, collection)
        async with asyncio.timeout(120):
            while len(await asyncio.to_thread(staged_keys, s3, settings, collection)) < 4:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        await asyncio.to_thread(kill_worker, worker)
        simulator.clear_faults()
        await asyncio.sleep(2)  # an upload the killed worker had sent may still land
        finished = await asyncio.to_thread(staged_keys, s3, settings, collection)
        assert 4 <= len(finished) < chunks, "the kill must land in the middle of the batches"
        assert catalog_items(settings.catalog.url, collection) == []  # nothing published before every chunk is
        simulator.reset_stats()

        worker = await start_worker(queue, log, module=SHORT_HEARTBEATS)
        result: CadipStagingResult = await result_of(handle)
    finally:
        simulator.clear_faults()
        await asyncio.to_thread(kill_worker, worker)
    assert (result.staging.items_staged, result.staging.assets_staged) == (1, chunks)
    assert simulator.stats("cadip")["downloads"] == chunks - len(finished)
    assert_session_staged(settings, s3, collection, session, handle.id)


async def test_a_worker_killed_while_a_window_continues_as_new_completes_it_once(
    client: Client, settings: Settings, simulator: Simulator, s3: Any, collection: str, tmp_path: Path
) -> None:
    """250 products, one page per `StagingPages` run (a worker of that configuration, with short heartbeat
    timeouts): the worker dies as the first page is published, when the first run ends in continue-as-new. A new
    worker carries the run (or its continuation) on: three runs in all, every product published once, no product
    transferred twice beyond the files in flight at the kill (two per running batch), and the request's progress
    adds up across the runs."""
    product_type = add_prip_products(simulator, 250)
    queue, log = f"tq-rel-can-{uuid.uuid4()}", tmp_path / "worker.log"
    module = "tests.reliability.one_page_per_run_worker"
    worker = await start_worker(queue, log, module=module)
    try:
        request = prip_request(product_type, collection, *WINDOW, max_parallel_transfers=4)
        simulator.reset_stats()
        handle = await client.start_workflow(
            PRIP_STAGING, request, id=f"test-rel-can-{uuid.uuid4()}", task_queue=queue, result_type=WindowStagingResult
        )
        await progress_until(handle, lambda p: p.items_done >= 100, within_s=120)
        await asyncio.to_thread(kill_worker, worker)
        await asyncio.sleep(2)
        worker = await start_worker(queue, log, module=module)
        result: WindowStagingResult = await result_of(handle, within_s=300)
        final = await progress_until(handle, lambda p: p.state == State.COMPLETED)  # a query needs a worker
    finally:
        await asyncio.to_thread(kill_worker, worker)

    assert (result.items_found, result.staging.items_staged, result.staging.assets_staged) == (250, 250, 250)
    assert (final.items_done, final.assets_done, final.items_total) == (250, 250, 250)
    # Again at most what was in flight at the kill: per running batch, a file downloading and the one before it
    # on its way to S3.
    assert 250 <= simulator.stats("prip")["downloads"] <= 250 + 2 * 4

    pages_id = f"{handle.id}/pages-{collection}"
    runs = sorted([r async for r in client.list_workflows(f'WorkflowId = "{pages_id}"')], key=lambda r: r.start_time)
    assert len(runs) == 3
    for run in runs[:-1]:
        events = [e async for e in client.get_workflow_handle(pages_id, run_id=run.run_id).fetch_history_events()]
        assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    staged = assert_collection_staged(settings, s3, collection, set(result.staging.staged), owner="alice")
    assert len(staged) == 250
