"""Operator control on the real stack: waiting for an operator, retry, cancel (signal and native), status."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle

from rs_ondemand.activities.catalog_client import CatalogClient
from rs_ondemand.config import Settings
from rs_ondemand.models.progress import Progress, State
from rs_ondemand.models.staging import CadipStagingInput, CadipStagingResult
from rs_ondemand.names import CADIP_STAGING, CANCEL_SIGNAL, PROGRESS_QUERY, RETRY_SIGNAL
from tests.support.stack import Simulator, run_cli

MiB = 1024 * 1024


def new_session(simulator: Simulator, chunks: int, chunk_size: int) -> str:
    session = f"S1A_{uuid.uuid4().int % 10**20:020d}"
    simulator.add_session(
        session_id=session, satellite="S1A", channels=1, chunks_per_channel=chunks, chunk_size=chunk_size
    )
    return session


async def start(client: Client, queue: str, session: str, collection: str, **options: Any) -> WorkflowHandle[Any, Any]:
    request = CadipStagingInput.for_session("carol", session, collection, options=options)
    return await client.start_workflow(
        CADIP_STAGING, request, id=f"test-op-{uuid.uuid4()}", task_queue=queue, result_type=CadipStagingResult
    )


async def progress_until(handle: WorkflowHandle[Any, Any], done: Any, within_s: float = 90) -> Progress:
    async with asyncio.timeout(within_s):
        while True:
            progress = await handle.query(PROGRESS_QUERY, result_type=Progress)
            if done(progress):
                return progress
            await asyncio.sleep(0.1)


async def test_a_station_outage_waits_for_an_operator_then_resumes_on_retry(
    client: Client, task_queue: str, simulator: Simulator, collection: str
) -> None:
    session = new_session(simulator, chunks=40, chunk_size=MiB)
    handle = await start(client, task_queue, session, collection, step_attempts=2)
    await progress_until(handle, lambda p: p.assets_done >= 4)
    simulator.faults(cadip={"outage": True})

    await progress_until(handle, lambda p: p.state == State.WAITING_FOR_OPERATOR)
    await asyncio.sleep(4)  # let every unfinished transfer spend its attempts too
    waiting = await handle.query(PROGRESS_QUERY, result_type=Progress)
    assert waiting.state == State.WAITING_FOR_OPERATOR and "503" in (waiting.last_error or "")
    assert 4 <= waiting.assets_done < 40

    query = f"WorkflowId = '{handle.id}' AND RsState = 'waiting_for_operator'"
    async with asyncio.timeout(30):  # visibility is eventually consistent
        while not [w async for w in client.list_workflows(query)]:  # noqa: ASYNC110 (polling the server)
            await asyncio.sleep(0.2)
    code, out, _ = await run_cli("status", handle.id, "--json")
    assert code == 0 and json.loads(out)["progress"]["state"] == "waiting_for_operator"

    simulator.clear_faults()
    simulator.reset_stats()
    code, _, err = await run_cli("retry", "--query", query)
    assert code == 0 and "retry sent to 1 request(s)" in err
    result = await asyncio.wait_for(handle.result(), timeout=120)

    assert result.staging.items_staged == 1 and result.staging.assets_staged == 40
    assert simulator.stats("cadip")["downloads"] == 40 - waiting.assets_done  # nothing downloaded twice
    final = await handle.query(PROGRESS_QUERY, result_type=Progress)
    assert final.state == State.COMPLETED
    assert final.last_error is None and final.waiting_steps == []  # the outage's error went with the retry


async def test_retry_of_one_step_re_runs_only_that_step_and_bad_signals_are_reported(
    client: Client, task_queue: str, simulator: Simulator, collection: str
) -> None:
    """Two transfers wait for an operator. A `retry` or `cancel` whose body has an unknown key changes nothing
    and is reported in `progress.warnings`; `retry --step` with a name `progress.waiting_steps` shows re-runs
    that transfer only; a plain `retry` then the other."""
    session = new_session(simulator, chunks=2, chunk_size=MiB)
    simulator.faults(cadip={"reset_rate": 1.0})  # every download breaks mid-body (retryable)
    handle = await start(client, task_queue, session, collection, step_attempts=2)
    waiting = await progress_until(handle, lambda p: len(p.waiting_steps) == 2)
    assert waiting.state == State.WAITING_FOR_OPERATOR and waiting.assets_done == 0
    first, second = waiting.waiting_steps
    assert first.startswith(f"stream {session}/") and second.startswith(f"stream {session}/")
    assert waiting.last_error and waiting.last_error.startswith("stream ")
    simulator.clear_faults()
    simulator.reset_stats()

    await handle.signal(RETRY_SIGNAL, {"stepp": first})  # a misspelt key must not retry every step
    await handle.signal(CANCEL_SIGNAL, {"reasn": "typo"})
    warned = await progress_until(handle, lambda p: len(p.warnings) == 2)
    assert warned.warnings == [
        "retry signal ignored: stepp: Extra inputs are not permitted",
        "cancel signal ignored: reasn: Extra inputs are not permitted",
    ]
    await asyncio.sleep(2)
    still = await handle.query(PROGRESS_QUERY, result_type=Progress)
    assert still.state == State.WAITING_FOR_OPERATOR and still.waiting_steps == [first, second]
    assert simulator.stats("cadip")["downloads"] == 0

    code, _, err = await run_cli("retry", handle.id, "--step", first)
    assert code == 0, err
    after = await progress_until(handle, lambda p: p.assets_done == 1 and p.waiting_steps == [second])
    assert after.state == State.WAITING_FOR_OPERATOR and after.last_error and second in after.last_error
    assert simulator.stats("cadip")["downloads"] == 1

    await handle.signal(RETRY_SIGNAL)  # no body: every waiting step
    result = await asyncio.wait_for(handle.result(), timeout=120)
    assert result.staging.assets_staged == 2 and simulator.stats("cadip")["downloads"] == 2
    final = await handle.query(PROGRESS_QUERY, result_type=Progress)
    assert final.state == State.COMPLETED and final.last_error is None and len(final.warnings) == 2


@pytest.mark.parametrize("how", ["signal", "native"])
async def test_cancelling_during_staging_cleans_up(
    client: Client, task_queue: str, settings: Settings, simulator: Simulator, s3: Any, collection: str, how: str
) -> None:
    """The `cancel` signal (from our CLI) and a Temporal cancel end the same way: CANCELED, children too,
    no object, upload or item left behind."""
    session = new_session(simulator, chunks=4, chunk_size=96 * MiB)
    handle = await start(client, task_queue, session, collection)
    bucket = settings.s3.rs_bucket
    checkpoints = f"transfers/{bucket}/carol/{collection}/"
    async with asyncio.timeout(60):  # cancel mid-transfer: as soon as a first part is stored
        while not s3.list_objects_v2(Bucket=settings.s3.rs_work_bucket, Prefix=checkpoints).get("Contents"):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    if how == "signal":
        code, _, err = await run_cli("cancel", handle.id, "--reason", "test")
        assert code == 0, err
    else:
        await handle.cancel()

    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), timeout=120)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    children = [w async for w in client.list_workflows(f"ParentWorkflowId = '{handle.id}'")]
    assert children and all(w.status == WorkflowExecutionStatus.CANCELED for w in children)
    prefix = f"carol/{collection}/"
    assert not s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents")
    assert not s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads")
    work = s3.list_objects_v2(Bucket=settings.s3.rs_work_bucket, Prefix=f"transfers/{bucket}/{prefix}")
    assert not work.get("Contents")
    assert (await handle.query(PROGRESS_QUERY, result_type=Progress)).state == State.CANCELLED


@pytest.mark.parametrize("case", ["created", "existed", "published"])
async def test_a_cancelled_request_removes_the_collection_it_created_and_left_empty_only(
    client: Client, task_queue: str, settings: Settings, simulator: Simulator, collection: str, case: str
) -> None:
    """`created`: the request created the collection and nothing is in it: it goes. `existed`: it was there
    before the request: it stays. `published`: another request published into it meanwhile: it stays."""
    async with httpx.AsyncClient(timeout=30) as http:
        catalog = CatalogClient(settings.catalog, http)
        if case == "existed":
            await catalog.ensure_collection(collection)
        simulator.faults(cadip={"reset_rate": 1.0})  # every download breaks: the request waits for an operator
        session = new_session(simulator, chunks=1, chunk_size=MiB)
        handle = await start(client, task_queue, session, collection, step_attempts=1)
        await progress_until(handle, lambda p: p.state == State.WAITING_FOR_OPERATOR)
        simulator.clear_faults()
        other = new_session(simulator, chunks=1, chunk_size=1024)
        if case == "published":
            result = await (await start(client, task_queue, other, collection)).result()
            assert result.staging.items_staged == 1

        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), timeout=60)
        found = await http.get(f"{settings.catalog.url}/collections/{collection}")
        assert found.status_code == (404 if case == "created" else 200)
        if case == "published":
            assert [item["id"] for item in await catalog.items(collection, [other, session])] == [other]
