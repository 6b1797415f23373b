"""Operator control on the real stack: waiting for an operator, retry, cancel (signal and native), status."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle

from rs_ondemand.config import Settings
from rs_ondemand.models.progress import Progress, State
from rs_ondemand.models.staging import CadipStagingInput, CadipStagingResult
from rs_ondemand.names import CADIP_STAGING, PROGRESS_QUERY
from tests.helpers import Simulator, run_cli

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
