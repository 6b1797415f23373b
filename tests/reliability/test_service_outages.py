"""Crash tests 1b-1d on a stack of the tests' own (conftest.py): the worker process, the Temporal server, the
catalog API and the S3 server stop (or freeze) in the middle of a CADIP staging request run by a worker process.

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
from temporalio.service import RPCError, RPCStatusCode

from rs_ondemand.models.progress import State
from rs_ondemand.names import collection_publisher_id
from tests.reliability.short_heartbeats_worker import TRANSFER_HEARTBEAT_TIMEOUT
from tests.support.cadip_staging import (
    OWNER,
    catalog_items,
    heartbeat_timeouts,
    keys_under,
    result_of,
    uploads_under,
)
from tests.support.own_stack import StagingRun


async def test_a_worker_killed_mid_staging_and_restarted_the_request_completes(run: StagingRun) -> None:
    """SIGKILL of the worker while several chunks are in flight and some are published: a new worker process picks
    the request up (the lost transfers time out and are retried) and it completes, each chunk staged once and
    verified, nothing else under its prefix. (tests/workflows/test_resume.py checks that a killed transfer resumes
    from its last stored part.)"""
    chunks = 16
    run.new_session(chunks)
    await run.start(latency_ms=500)
    before = await run.transferred(4)
    assert before.assets_done < chunks

    await run.worker_crashes()

    await run.completes()


async def test_a_temporal_server_killed_and_restarted_mid_staging_the_request_completes(run: StagingRun) -> None:
    """SIGKILL of the dev server while transfers run, down a few seconds, started again on the same SQLite file:
    the request carries on from its history and completes; the worker process rode it out."""
    chunks = 24
    run.new_session(chunks)
    await run.start(latency_ms=700)  # spread the transfers over ~10 s
    before = await run.transferred(4)
    assert before.assets_done < chunks

    async with run.down("temporal"):
        await asyncio.sleep(5)

    await run.completes()
    assert run.worker.alive()


async def test_a_catalog_down_for_a_while_is_retried_through(run: StagingRun) -> None:
    """The catalog stops mid-transfer; the publication fails while it is down and succeeds once it is back, within
    the default retry policy: no operator needed."""
    run.new_session(chunks=12)
    await run.start(latency_ms=300)
    await run.transferred(2)
    async with run.down("catalog"):
        attempts = await publish_attempts(run.client, run.collection, at_least=2)
        assert "catalog unreachable" in attempts["last_failure"]

    await run.completes()


async def publish_attempts(client: Client, collection: str, at_least: int) -> dict[str, Any]:
    """Wait until the collection's pending publication (its `CollectionPublisher` writes what `Staging` hands it)
    has failed `at_least` times; its attempt and error."""
    publisher = client.get_workflow_handle(collection_publisher_id(collection))
    async with asyncio.timeout(90):
        while True:
            try:
                description = await publisher.describe()
            except RPCError as err:  # the publisher starts with the request's first publication
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                await asyncio.sleep(0.3)
                continue
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
    run: StagingRun,
) -> None:
    """With `step_attempts: 2` the publication gives up while the catalog is down: the request shows
    `waiting_for_operator` with the catalog's error and stays so; catalog back + `retry` → completed, without
    downloading anything again."""
    chunks = 12
    run.new_session(chunks)
    await run.start(latency_ms=300, step_attempts=2)
    await run.transferred(2)
    async with run.down("catalog"):
        waiting = await run.waiting_for_operator()
        assert "catalog unreachable" in (waiting.last_error or ""), waiting.last_error
        assert waiting.assets_done == chunks  # every transfer is done: only the publication waits
        await asyncio.sleep(3)
        assert (await run.progress()).state == State.WAITING_FOR_OPERATOR
        downloads = run.simulator.stats("cadip")["downloads"]

    await run.retry()
    await run.completes()
    assert run.simulator.stats("cadip")["downloads"] == downloads == chunks  # the retry re-ran the publication only


async def test_s3_down_when_a_request_starts_waits_for_an_operator_then_resumes_on_retry(run: StagingRun) -> None:
    """S3 stopped before anything of the request is written: the search cannot keep its results, the request
    waits for an operator with S3's error; S3 back (moto: empty, buckets recreated) + `retry` → completed."""
    run.new_session(chunks=8)
    async with run.down("s3"):
        await run.start(step_attempts=2)
        waiting = await run.waiting_for_operator(within_s=120)
        assert waiting.last_error is not None and run.settings.s3.s3_endpoint_url is not None
        assert "search CADIP" in waiting.last_error and run.settings.s3.s3_endpoint_url in waiting.last_error

    await run.retry()
    await run.completes()


async def test_s3_frozen_mid_transfer_the_request_completes(run: StagingRun) -> None:
    """S3 stops answering (SIGSTOP) for longer than a transfer's heartbeat timeout (the worker's, scaled down),
    then carries on (SIGCONT): no attempt is lost to it and the request completes."""
    chunks = 16
    run.new_session(chunks)
    await run.start(latency_ms=300)
    await run.transferred(3)
    async with run.frozen("s3"):
        await asyncio.sleep(TRANSFER_HEARTBEAT_TIMEOUT.total_seconds() + 4)
        frozen = await run.progress()

    await run.completes()
    assert frozen.assets_done < chunks
    assert run.simulator.stats("cadip")["downloads"] == chunks
    child = f"{run.handle.id}/staging-{run.collection}-0000"
    transfers = await heartbeat_timeouts(run.client, child, {"transfer_batch", "stream_asset"})
    assert transfers and set(transfers) == {TRANSFER_HEARTBEAT_TIMEOUT}  # frozen for longer than that


async def test_s3_restarted_empty_mid_transfer_never_publishes_what_it_lost(run: StagingRun) -> None:
    """moto loses every object when it stops: chunks verified before the crash and the request's manifests are
    gone. The request must not publish an item whose objects are missing."""
    run.new_session(chunks=16)
    await run.start(latency_ms=300, step_attempts=2)
    await run.transferred(4)
    async with run.down("s3"):
        first = await run.waiting_for_operator(within_s=120)
    assert first.last_error is not None and run.settings.s3.s3_endpoint_url is not None
    assert run.settings.s3.s3_endpoint_url in first.last_error

    # Retried once: whatever it tries next runs into what S3 lost (or into S3's empty start), and must stop
    # there, failed or waiting for an operator again, never publishing.
    with contextlib.suppress(RPCError):  # it may have failed already (then there is nothing to retry)
        await run.retry()
    end = await run.progress_until(
        lambda p: (
            p.state in (State.FAILED, State.COMPLETED)
            or (p.state == State.WAITING_FOR_OPERATOR and p.last_error != first.last_error)
        ),
        within_s=120,
    )
    assert end.state != State.COMPLETED
    assert catalog_items(run.settings.catalog.url, run.collection) == []
    if end.state == State.WAITING_FOR_OPERATOR:
        await run.handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await result_of(run.handle)
    bucket, prefix = run.settings.s3.rs_bucket, f"{OWNER}/{run.collection}/"
    assert keys_under(run.s3, bucket, prefix) == set()
    assert uploads_under(run.s3, bucket, prefix) == []
    assert keys_under(run.s3, run.settings.s3.rs_work_bucket, f"transfers/{bucket}/{prefix}") == set()
