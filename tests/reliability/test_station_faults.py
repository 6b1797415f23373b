"""Part 2 of the reliability suite: station faults injected by the simulator (`/_faults`) for a whole request,
one multi-chunk CADIP session per fault kind, on the session stack with its in-process worker.

Covered elsewhere, not repeated here:
- tests/workflows/test_cadip_staging.py: `test_cadip_staging_survives_a_station_error_burst` (60 % 5xx and 30 %
  resets for the first 4 s only), `test_cadip_staging_handles_corrupted_downloads` (every download corrupted:
  ChecksumMismatchError, nothing written);
- tests/workflows/test_operator.py: a station outage waits for an operator, `retry` resumes;
- tests/workflows/test_resume.py: a worker killed mid-transfer resumes from the last stored part.

Here every fault stays on for the whole request at a steady low rate, each kind on its own (the simulator draws
from a seeded generator, so a run replays the same decisions), and the end state is checked in full: catalog
item ↔ S3 objects, sizes and MD5s against what the station announces. Expired tokens need a simulator of their
own (its token lifetime is a process setting): see test_station_tokens.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from rs_ondemand.bench.chaos.procs import kill_worker
from rs_ondemand.config import Settings
from rs_ondemand.models.progress import Progress, State
from rs_ondemand.models.staging import AuxipStagingInput, CadipStagingResult, PripStagingInput, WindowStagingResult
from rs_ondemand.names import AUXIP_STAGING, PRIP_STAGING, PROGRESS_QUERY
from rs_ondemand.workflows import _options
from rs_ondemand.workflows._failures import root_cause
from tests.reliability.short_heartbeats_worker import TRANSFER_HEARTBEAT_TIMEOUT
from tests.support.cadip_staging import (
    OWNER,
    MiB,
    assert_collection_staged,
    assert_session_staged,
    catalog_items,
    heartbeat_timeouts,
    keys_under,
    new_session,
    progress_until,
    start_staging,
    start_worker,
    station_assets,
    uploads_under,
)
from tests.support.stack import Simulator

FAULTS = {
    "5xx": ({"error_rate": 0.05}, "error"),
    "connection resets": ({"reset_rate": 0.15}, "reset"),
    "truncated bodies": ({"truncate_rate": 0.15}, "truncate"),
    "corrupted bytes": ({"corrupt_rate": 0.05}, "corrupt"),
}


async def stage_and_check(
    client: Client, queue: str, settings: Settings, s3: Any, session: str, collection: str
) -> tuple[CadipStagingResult, WorkflowHandle[Any, CadipStagingResult]]:
    """Stage without any operator action and check the end state in full."""
    handle = await start_staging(client, queue, session, collection)
    result = await asyncio.wait_for(handle.result(), timeout=240)
    assert result.staging.staged == [session]
    assert (await handle.query(PROGRESS_QUERY, result_type=Progress)).state == State.COMPLETED
    assert_session_staged(settings, s3, collection, session, handle.id)
    return result, handle


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_request_under_steady_station_faults_completes_on_its_own(
    fault: str,
    client: Client,
    task_queue: str,
    settings: Settings,
    simulator: Simulator,
    s3: Any,
    collection: str,
) -> None:
    spec, kind = FAULTS[fault]
    chunks = 40
    session = new_session(simulator, chunks, chunk_size=MiB)
    simulator.reset_stats()
    simulator.faults(cadip=spec)

    result, _ = await stage_and_check(client, task_queue, settings, s3, session, collection)

    assert result.staging.assets_staged == chunks
    assert simulator.stats("cadip")["faults_injected"].get(kind, 0) > 0, "the fault never happened: nothing tested"


EVERY_FAULT = {"error_rate": 0.05, "reset_rate": 0.1, "truncate_rate": 0.1, "corrupt_rate": 0.05, "latency_ms": 150}
"""Every kind of fault at once, on every station."""


async def test_cadip_prip_and_auxip_requests_under_every_fault_at_once_complete_on_their_own(
    client: Client,
    task_queue: str,
    settings: Settings,
    simulator: Simulator,
    s3: Any,
) -> None:
    """A CADIP session, a PRIP window and an AUXIP window staged at the same time while every station answers
    with 5xx, resets, truncated and corrupted bodies, late: all three complete without an operator, and each
    catalog collection holds exactly what its station announces (sizes and MD5s), nothing more in S3."""
    session = new_session(simulator, 12, chunk_size=MiB)
    start = datetime(2032, 3, 1, tzinfo=UTC)  # generated products live after the seeded catalogue
    windows = {}
    for station, model in (("prip", PripStagingInput), ("auxip", AuxipStagingInput)):
        product_type = f"{station.upper()}{uuid.uuid4().hex[:8].upper()}"
        added = simulator.add_products(
            station, product_type, 8, start=start.isoformat(), step_seconds=60, validity_seconds=10 * 86400, size=MiB
        )
        collection = f"rel-{station}-{uuid.uuid4().hex[:8]}"
        fields = {"prip_collection": "prip"} if station == "prip" else {}
        request = model.for_window(
            OWNER, product_type, collection, start + timedelta(days=5), start + timedelta(days=6), **fields
        )
        windows[station] = (request, len(added["products"]))
    simulator.reset_stats()
    simulator.faults(cadip=EVERY_FAULT, prip=EVERY_FAULT, auxip=EVERY_FAULT)

    cadip_collection = f"rel-cadip-{uuid.uuid4().hex[:8]}"
    cadip = await start_staging(client, task_queue, session, cadip_collection)
    handles = {
        station: await client.start_workflow(
            PRIP_STAGING if station == "prip" else AUXIP_STAGING,
            request,
            id=f"test-rel-{station}-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=WindowStagingResult,
        )
        for station, (request, _count) in windows.items()
    }
    await asyncio.wait_for(cadip.result(), timeout=300)
    results = {station: await asyncio.wait_for(h.result(), timeout=300) for station, h in handles.items()}

    for station in ("cadip", "prip", "auxip"):
        injected = simulator.stats(station)["faults_injected"]
        assert {"error", "reset", "truncate", "corrupt"} & set(injected), f"{station}: no fault happened: {injected}"
    simulator.clear_faults()  # the checks below read the stations too
    assert_session_staged(settings, s3, cadip_collection, session, cadip.id)
    for station, (request, count) in windows.items():
        ids = set(results[station].staging.staged)  # checked against the station's own items below
        assert results[station].items_found == len(ids) == count, results[station]
        url = getattr(settings, station).url
        assert url
        announced = {item: station_assets(url, station, item) for item in ids}
        collection = request.catalog_collection_identifier
        assert_collection_staged(settings, s3, collection, ids, station=announced, request_id=handles[station].id)


async def test_station_answers_slower_than_the_transfer_heartbeat_timeout_cost_no_attempt(
    client: Client,
    task_queue: str,
    settings: Settings,
    simulator: Simulator,
    s3: Any,
    collection: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every station request waits longer than a transfer's heartbeat timeout before its answer: the transfers
    keep heartbeating meanwhile, so none is timed out and retried (each chunk is downloaded once). The timeout is
    scaled down from 15 s to 6 s as for the crash tests' workers: the same race, at a third of the wait for each of
    the request's slow answers (the scheduled transfers are checked to have it)."""
    monkeypatch.setitem(_options.TRANSFER, "heartbeat_timeout", TRANSFER_HEARTBEAT_TIMEOUT)
    latency_s = TRANSFER_HEARTBEAT_TIMEOUT.total_seconds() + 1
    chunks = 2
    session = new_session(simulator, chunks, chunk_size=MiB)
    simulator.reset_stats()
    simulator.faults(cadip={"latency_ms": int(latency_s * 1000)})

    result, handle = await stage_and_check(client, task_queue, settings, s3, session, collection)

    assert result.staging.assets_staged == chunks
    assert simulator.stats("cadip")["downloads"] == chunks
    child = f"{handle.id}/staging-{collection}-0000"
    batches = await heartbeat_timeouts(client, child, {"transfer_batch", "stream_asset"})
    assert batches and set(batches) == {TRANSFER_HEARTBEAT_TIMEOUT}


@pytest_asyncio.fixture(loop_scope="session")
async def worker(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A worker process of the test's own (`python -m rs_ondemand.worker`) on a queue of its own; indirect
    parameter: extra environment. A request it leaves stuck cannot disturb the session's in-process worker."""
    queue = f"tq-rel-faults-{uuid.uuid4()}"
    process = await start_worker(queue, tmp_path / "worker.log", getattr(request, "param", {}))
    yield queue
    await asyncio.to_thread(kill_worker, process)


@pytest.mark.parametrize("worker", [{"CADIP_MAX_CONCURRENT_DOWNLOADS": "1"}], indirect=True)
async def test_persistently_corrupted_chunks_fail_the_request_and_reach_neither_s3_nor_the_catalog(
    worker: str, client: Client, settings: Settings, simulator: Simulator, s3: Any, collection: str
) -> None:
    """60 % of downloads corrupted: most chunks verify (within 3 attempts), some stay corrupt for 3 attempts, which
    is final. The request fails with the checksum error; nothing corrupt is published, and the chunks that did
    verify are removed with the rest (the existing test corrupts every download, so it never has a verified object
    to remove). One download at a time, so that no other transfer is running when one fails for good: that case
    has a bug of its own (next test)."""
    chunks = 40
    session = new_session(simulator, chunks, chunk_size=MiB // 2)
    simulator.reset_stats()
    simulator.faults(cadip={"corrupt_rate": 0.6})
    handle = await start_staging(client, worker, session, collection)

    with pytest.raises(WorkflowFailureError) as caught:
        await asyncio.wait_for(handle.result(), timeout=240)

    cause = root_cause(caught.value)
    assert isinstance(cause, ApplicationError) and cause.type == "ChecksumMismatchError", cause
    progress = await handle.query(PROGRESS_QUERY, result_type=Progress)
    assert progress.state == State.FAILED
    # Chunks go in batches, and a batch that fails counts none of its files in the progress: the station's
    # counters tell how many downloads arrived intact (verified, then stored) before the failure.
    stats = simulator.stats("cadip")
    intact = stats["downloads"] - stats["faults_injected"].get("corrupt", 0)
    assert intact > 0, "no chunk verified before the failure: the clean-up had nothing to remove"
    assert_nothing_left(settings, s3, collection, handle.id)


async def test_a_final_transfer_failure_fails_the_request_without_waiting_for_an_operator(
    worker: str, client: Client, settings: Settings, simulator: Simulator, s3: Any, collection: str
) -> None:
    """Every download fails, half of them corrupted (final at the 3rd attempt), half reset (retried); each takes a
    second, so other transfers are running when the first one fails for good. Those are cancelled, and an attempt
    that then ends in a failure rather than a cancellation is still the step's own cancellation, not a failure
    for an operator (it once made the request wait for one)."""
    session = new_session(simulator, 16, chunk_size=MiB // 4)
    simulator.faults(cadip={"corrupt_rate": 0.5, "reset_rate": 0.5, "latency_ms": 1000})
    handle = await start_staging(client, worker, session, collection)

    stopped = await progress_until(handle, lambda p: p.state in (State.FAILED, State.WAITING_FOR_OPERATOR))
    try:
        assert stopped.state == State.FAILED, f"a failed request waits for an operator: {stopped.last_error}"
        with pytest.raises(WorkflowFailureError) as caught:
            await asyncio.wait_for(handle.result(), timeout=60)
        cause = root_cause(caught.value)
        assert isinstance(cause, ApplicationError) and cause.type == "ChecksumMismatchError", cause
        assert_nothing_left(settings, s3, collection, handle.id)
    finally:
        if stopped.state == State.WAITING_FOR_OPERATOR:
            await end_stuck_request(client, handle, settings, s3, collection)


async def end_stuck_request(
    client: Client, handle: WorkflowHandle[Any, Any], settings: Settings, s3: Any, collection: str
) -> None:
    """After a failed assertion: cancel the request; if it does not end, terminate it and its child and remove
    what they wrote, so that the other tests of the module start clean."""
    await handle.cancel()
    with contextlib.suppress(TimeoutError, WorkflowFailureError):
        await asyncio.wait_for(handle.result(), timeout=60)
    if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
        return
    for stuck in (handle, client.get_workflow_handle(f"{handle.id}/staging-{collection}-0000")):
        with contextlib.suppress(RPCError):
            await stuck.terminate("stuck after cancel")
    await asyncio.to_thread(remove_everything, s3, settings, collection)


def remove_everything(s3: Any, settings: Settings, collection: str) -> None:
    bucket, prefix = settings.s3.rs_bucket, f"{OWNER}/{collection}/"
    for upload in s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for store, under in ((bucket, prefix), (settings.s3.rs_work_bucket, f"transfers/{bucket}/{prefix}")):
        for key in keys_under(s3, store, under):
            s3.delete_object(Bucket=store, Key=key)


def assert_nothing_left(settings: Settings, s3: Any, collection: str, request_id: str) -> None:
    assert catalog_items(settings.catalog.url, collection) == []
    bucket, prefix = settings.s3.rs_bucket, f"{OWNER}/{collection}/"
    assert keys_under(s3, bucket, prefix) == set()
    assert uploads_under(s3, bucket, prefix) == []
    assert keys_under(s3, settings.s3.rs_work_bucket, f"transfers/{bucket}/{prefix}") == set()
    assert keys_under(s3, settings.s3.rs_work_bucket, f"requests/{request_id}/") == set()
