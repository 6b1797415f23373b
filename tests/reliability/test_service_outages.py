"""Crash tests 1b-1d on a stack of the tests' own (conftest.py): the Temporal server, the catalog API and the
S3 server stop (or freeze) in the middle of a CADIP staging request run by a worker process.

S3 is moto, which keeps objects in memory: a stopped S3 comes back empty (the launcher recreates the buckets).
So what S3 can honestly be put through here is: an outage before anything is written (the request waits for an
operator with S3's error, then resumes), a freeze (SIGSTOP/SIGCONT: S3 unresponsive, nothing lost) in the middle
of transfers, and a restart that loses data (the request must never publish an item whose objects are gone).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from rs_ondemand.config import Settings
from rs_ondemand.models.progress import Progress, State
from rs_ondemand.names import PROGRESS_QUERY, RETRY_SIGNAL
from tests.helpers import Simulator
from tests.reliability._support import (
    OWNER,
    assert_session_staged,
    catalog_items,
    keys_under,
    new_session,
    progress_until,
    result_of,
    start_staging,
    uploads_under,
)
from tests.reliability.conftest import OwnStack, WorkerProcess


async def test_a_temporal_server_killed_and_restarted_mid_staging_the_request_completes(
    own_stack: OwnStack,
    own_settings: Settings,
    own_client: Client,
    own_s3: Any,
    own_simulator: Simulator,
    own_worker: WorkerProcess,
    own_collection: str,
) -> None:
    """SIGKILL of the dev server while transfers run, down a few seconds, started again on the same SQLite file:
    the request carries on from its history and completes; the worker process rode it out."""
    chunks = 24
    session = new_session(own_simulator, chunks)
    own_simulator.faults(cadip={"latency_ms": 700})  # spread the transfers over ~10 s
    handle = await start_staging(own_client, own_worker.queue, session, own_collection)
    before = await progress_until(handle, lambda p: p.assets_done >= 4)
    assert before.assets_done < chunks

    await asyncio.to_thread(own_stack.stop, "temporal")
    await asyncio.sleep(5)
    await asyncio.to_thread(own_stack.restore)
    result = await result_of(handle)

    assert result.staging.staged == [session] and result.staging.assets_staged == chunks
    final = await handle.query(PROGRESS_QUERY, result_type=Progress)
    assert final.state == State.COMPLETED and final.assets_done == chunks
    assert own_worker.alive()
    assert_session_staged(own_settings, own_s3, own_collection, session, handle.id)


async def test_a_catalog_down_for_a_while_is_retried_through(
    own_stack: OwnStack,
    own_settings: Settings,
    own_client: Client,
    own_s3: Any,
    own_simulator: Simulator,
    own_worker: WorkerProcess,
    own_collection: str,
) -> None:
    """The catalog stops mid-transfer; the publication fails while it is down and succeeds once it is back, within
    the default retry policy: no operator needed."""
    chunks = 12
    session = new_session(own_simulator, chunks)
    own_simulator.faults(cadip={"latency_ms": 300})
    handle = await start_staging(own_client, own_worker.queue, session, own_collection)
    await progress_until(handle, lambda p: p.assets_done >= 2)
    await asyncio.to_thread(own_stack.stop, "catalog")

    attempts = await publish_attempts(own_client, handle.id, own_collection, at_least=2)
    assert "catalog unreachable" in attempts["last_failure"]
    await asyncio.to_thread(own_stack.restore)
    result = await result_of(handle)

    assert result.staging.staged == [session]
    final = await handle.query(PROGRESS_QUERY, result_type=Progress)
    assert final.state == State.COMPLETED
    assert_session_staged(own_settings, own_s3, own_collection, session, handle.id)


async def publish_attempts(client: Client, parent_id: str, collection: str, at_least: int) -> dict[str, Any]:
    """Wait until the `Staging` child's pending publication has failed `at_least` times; its attempt and error."""
    child = client.get_workflow_handle(f"{parent_id}/staging-{collection}-0000")
    async with asyncio.timeout(90):
        while True:
            description = await child.describe()
            for pending in description.raw_description.pending_activities:
                if pending.activity_type.name == "publish_staged_items" and pending.attempt > at_least:
                    # A failure over 4 KB (ours carry their stack traces) is kept by the server under a
                    # "Failure exceeds size limit." wrapper: the cause chain holds the messages.
                    messages, failure = [], pending.last_failure
                    while failure.message:
                        messages.append(failure.message)
                        failure = failure.cause
                    return {"attempt": pending.attempt, "last_failure": " <- ".join(messages)}
            await asyncio.sleep(0.3)


async def test_a_catalog_down_beyond_the_retry_policy_waits_for_an_operator_then_resumes_on_retry(
    own_stack: OwnStack,
    own_settings: Settings,
    own_client: Client,
    own_s3: Any,
    own_simulator: Simulator,
    own_worker: WorkerProcess,
    own_collection: str,
) -> None:
    """With `step_attempts: 2` the publication gives up while the catalog is down: the request shows
    `waiting_for_operator` with the catalog's error and stays so; catalog back + `retry` → completed, without
    downloading anything again."""
    chunks = 12
    session = new_session(own_simulator, chunks)
    own_simulator.faults(cadip={"latency_ms": 300})
    handle = await start_staging(own_client, own_worker.queue, session, own_collection, step_attempts=2)
    await progress_until(handle, lambda p: p.assets_done >= 2)
    await asyncio.to_thread(own_stack.stop, "catalog")
    try:
        waiting = await progress_until(handle, lambda p: p.state == State.WAITING_FOR_OPERATOR)
        assert "catalog unreachable" in (waiting.last_error or ""), waiting.last_error
        assert waiting.assets_done == chunks  # every transfer is done: only the publication waits
        await asyncio.sleep(3)
        assert (await handle.query(PROGRESS_QUERY, result_type=Progress)).state == State.WAITING_FOR_OPERATOR
        downloads = own_simulator.stats("cadip")["downloads"]
    finally:
        await asyncio.to_thread(own_stack.restore)

    await handle.signal(RETRY_SIGNAL)
    result = await result_of(handle)

    assert result.staging.staged == [session] and result.staging.assets_staged == chunks
    assert own_simulator.stats("cadip")["downloads"] == downloads == chunks  # the retry re-ran the publication only
    assert (await handle.query(PROGRESS_QUERY, result_type=Progress)).state == State.COMPLETED
    assert_session_staged(own_settings, own_s3, own_collection, session, handle.id)


async def test_s3_down_when_a_request_starts_waits_for_an_operator_then_resumes_on_retry(
    own_stack: OwnStack,
    own_settings: Settings,
    own_client: Client,
    own_s3: Any,
    own_simulator: Simulator,
    own_worker: WorkerProcess,
    own_collection: str,
) -> None:
    """S3 stopped before anything of the request is written: the search cannot keep its results, the request
    waits for an operator with S3's error; S3 back (moto: empty, buckets recreated) + `retry` → completed."""
    chunks = 8
    session = new_session(own_simulator, chunks)
    await asyncio.to_thread(own_stack.stop, "s3")
    try:
        handle = await start_staging(own_client, own_worker.queue, session, own_collection, step_attempts=2)
        waiting = await progress_until(handle, lambda p: p.state == State.WAITING_FOR_OPERATOR, within_s=120)
        assert waiting.last_error is not None
        assert "search CADIP" in waiting.last_error and own_settings.s3.s3_endpoint_url in waiting.last_error
    finally:
        await asyncio.to_thread(own_stack.restore)

    await handle.signal(RETRY_SIGNAL)
    result = await result_of(handle)

    assert result.staging.staged == [session] and result.staging.assets_staged == chunks
    assert_session_staged(own_settings, own_s3, own_collection, session, handle.id)


async def test_s3_frozen_mid_transfer_the_request_completes(
    own_stack: OwnStack,
    own_settings: Settings,
    own_client: Client,
    own_s3: Any,
    own_simulator: Simulator,
    own_worker: WorkerProcess,
    own_collection: str,
) -> None:
    """S3 stops answering (SIGSTOP) for longer than a transfer's heartbeat timeout, then carries on (SIGCONT):
    no attempt is lost to it and the request completes."""
    chunks = 16
    session = new_session(own_simulator, chunks)
    own_simulator.faults(cadip={"latency_ms": 300})
    handle = await start_staging(own_client, own_worker.queue, session, own_collection)
    await progress_until(handle, lambda p: p.assets_done >= 3)
    await asyncio.to_thread(own_stack.freeze, "s3")
    try:
        await asyncio.sleep(20)
        frozen = await handle.query(PROGRESS_QUERY, result_type=Progress)
    finally:
        await asyncio.to_thread(own_stack.thaw, "s3")
    result = await result_of(handle)

    assert frozen.assets_done < chunks
    assert result.staging.staged == [session] and result.staging.assets_staged == chunks
    assert own_simulator.stats("cadip")["downloads"] == chunks
    assert_session_staged(own_settings, own_s3, own_collection, session, handle.id)


async def test_s3_restarted_empty_mid_transfer_never_publishes_what_it_lost(
    own_stack: OwnStack,
    own_settings: Settings,
    own_client: Client,
    own_s3: Any,
    own_simulator: Simulator,
    own_worker: WorkerProcess,
    own_collection: str,
) -> None:
    """moto loses every object when it stops: chunks verified before the crash and the request's manifests are
    gone. The request must not publish an item whose objects are missing."""
    chunks = 16
    session = new_session(own_simulator, chunks)
    own_simulator.faults(cadip={"latency_ms": 300})
    handle = await start_staging(own_client, own_worker.queue, session, own_collection, step_attempts=2)
    await progress_until(handle, lambda p: p.assets_done >= 4)
    await asyncio.to_thread(own_stack.stop, "s3")
    try:
        first = await progress_until(handle, lambda p: p.state == State.WAITING_FOR_OPERATOR, within_s=120)
    finally:
        await asyncio.to_thread(own_stack.restore)
    assert first.last_error is not None and own_settings.s3.s3_endpoint_url in first.last_error

    # Retried once: whatever it tries next runs into what S3 lost (or into S3's empty start), and must stop
    # there, failed or waiting for an operator again, never publishing.
    with contextlib.suppress(RPCError):  # it may have failed already (then there is nothing to retry)
        await handle.signal(RETRY_SIGNAL)
    end = await progress_until(
        handle,
        lambda p: (
            p.state in (State.FAILED, State.COMPLETED)
            or (p.state == State.WAITING_FOR_OPERATOR and p.last_error != first.last_error)
        ),
        within_s=120,
    )
    assert end.state != State.COMPLETED
    assert catalog_items(own_settings.catalog.url, own_collection) == []
    if end.state == State.WAITING_FOR_OPERATOR:
        await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await result_of(handle)
    bucket, prefix = own_settings.s3.rs_bucket, f"{OWNER}/{own_collection}/"
    assert keys_under(own_s3, bucket, prefix) == set()
    assert uploads_under(own_s3, bucket, prefix) == []
    assert keys_under(own_s3, own_settings.s3.rs_work_bucket, f"transfers/{bucket}/{prefix}") == set()
