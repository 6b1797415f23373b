"""A cancel that races an activity's end: requested before publication starts it wins (CANCELLED, what the request
wrote removed, nothing published), even when the activity it cancelled completes anyway; requested once
publication started it comes too late (the publication finishes, the request completes and says so).

The race is made deterministic by stand-ins of the real activities (same names, same work): each does the real
activity's work, then completes only once the test has sent its cancel — as an activity that finishes just
before it notices its cancel does. Everything else is the real stack."""

from __future__ import annotations

import asyncio
import inspect
import typing
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle

from rs_ondemand.config import Settings
from rs_ondemand.models.dpr import DprProcessIn, DprProcessResult, DprProgress
from rs_ondemand.models.operator import CancelSignal
from rs_ondemand.models.progress import Progress, State
from rs_ondemand.models.staging import CadipStagingInput, CadipStagingResult
from rs_ondemand.names import CADIP_STAGING, CANCEL_SIGNAL, DPR_PROCESSING, PROGRESS_QUERY, safe_segment
from rs_ondemand.worker import activities, running_workers
from tests.support.sample_requests import demo_request, stage_sample_session
from tests.support.stack import Simulator

OWNER = "late-cancel"
MiB = 1024 * 1024


class Gate:
    """Where a stand-in waits once `armed` by a test: `reached` once its real work is done, `go` once the test
    cancelled the request (`cancelled`). A gate not armed lets every call through."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.go = asyncio.Event()
        self.go.set()
        self.cancelled = False

    def arm(self) -> None:
        self.reached.clear()
        self.go.clear()
        self.cancelled = False

    def open(self) -> None:
        self.go.set()


GATES: dict[str, Gate] = {}

TOLD_OF_THE_CANCEL = {"run_processor"}
"""Stand-ins whose cancel the workflow requests (the EOPF run): they complete only once told (or after 10 s). The
publications are shielded from a cancel that comes too late: never told, they complete as soon as it is sent."""


def completing_after_the_cancel(real: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
    """An activity of `real`'s name that does `real`'s work (never interrupted by a cancel), then returns its
    result only after the test sent the request's cancel (and, if the activity is told of it, after it was)."""
    name = real.__name__
    gate = GATES.setdefault(name, Gate())

    async def stand_in(argument: Any) -> Any:
        work = asyncio.ensure_future(real(argument))
        told = False
        while not work.done():
            try:
                await asyncio.wait([work])
            except asyncio.CancelledError:
                told = True
        result = work.result()
        gate.reached.set()
        await gate.go.wait()
        # Heartbeats let the cancel reach an activity the workflow waits for (an EOPF run): it completes once told.
        for _ in range(100 if gate.cancelled and name in TOLD_OF_THE_CANCEL else 0):
            if told:
                break
            try:
                activity.heartbeat()
                await asyncio.sleep(0.1)
            except asyncio.CancelledError:
                told = True
        return result

    hints = typing.get_type_hints(real)  # the worker decodes the argument as the real activity's model
    parameter = next(iter(inspect.signature(real).parameters))
    stand_in.__annotations__ = {"argument": hints[parameter], "return": hints["return"]}
    stand_in.__name__ = name
    return activity.defn(name=name)(stand_in)


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def late_queue(client: Client, settings: Settings) -> AsyncIterator[str]:
    """Workers with the real activities, but for stand-ins of the EOPF run and of both publications."""
    queue = f"tq-late-{uuid.uuid4()}"
    replaced = {"run_processor", "publish_products", "publish_staged_items"}
    async with activities(settings) as fns:
        fns = [completing_after_the_cancel(fn) if fn.__name__ in replaced else fn for fn in fns]
        async with running_workers(client, settings, fns, task_queue=queue):
            yield queue


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def session_collection(client: Client, late_queue: str) -> str:
    collection = f"late-cadip-{uuid.uuid4().hex[:8]}"
    await stage_sample_session(client, late_queue, OWNER, collection)
    return collection


@pytest.fixture(autouse=True)
def gates() -> Iterator[None]:
    """Whatever a test armed is let through when it ends."""
    yield
    for gate in GATES.values():
        gate.open()


async def history(handle: WorkflowHandle[Any, Any]) -> list[HistoryEvent]:
    return [event async for event in handle.fetch_history_events()]


def cancel_requested_at(events: list[HistoryEvent]) -> int | None:
    requested = (e.event_id for e in events if e.HasField("workflow_execution_cancel_requested_event_attributes"))
    return next(requested, None)


async def cancel(handle: WorkflowHandle[Any, Any], how: str, gate: Gate) -> None:
    """Cancel the request once the stand-in behind the (armed) `gate` did its work; then let it complete."""
    await asyncio.wait_for(gate.reached.wait(), timeout=180)
    if how == "signal":
        await handle.signal(CANCEL_SIGNAL, CancelSignal(reason="test"))
        async with asyncio.timeout(30):  # the signal asks the server for the cancel: wait until it has
            while cancel_requested_at(await history(handle)) is None:  # noqa: ASYNC110 (polling the server)
                await asyncio.sleep(0.1)
    else:
        await handle.cancel()
    gate.cancelled = True
    gate.open()


def s3_keys(s3: Any, url: str) -> list[str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return [obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


async def start_dpr(client: Client, queue: str, request: DprProcessIn) -> WorkflowHandle[Any, DprProcessResult]:
    return await client.start_workflow(
        DPR_PROCESSING, request, id=f"test-late-{uuid.uuid4()}", task_queue=queue, result_type=DprProcessResult
    )


@pytest.mark.parametrize("how", ["signal", "native"])
async def test_a_cancel_wins_over_a_processor_run_that_completes_anyway(
    how: str, client: Client, late_queue: str, session_collection: str, s3: Any, settings: Settings
) -> None:
    """The issue's history: cancel requested, the EOPF activity's cancel requested, then the activity completed.
    Nothing is published and the run's outputs and payload are removed."""
    request = demo_request(OWNER, session_collection)
    GATES["run_processor"].arm()
    handle = await start_dpr(client, late_queue, request)
    await cancel(handle, how, GATES["run_processor"])

    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), timeout=180)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    events = await history(handle)
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    (run,) = [
        e
        for e in events
        if e.HasField("activity_task_completed_event_attributes")
        and scheduled[e.activity_task_completed_event_attributes.scheduled_event_id] == "run_processor"
    ]
    requested = cancel_requested_at(events)
    assert requested is not None and run.event_id > requested  # the race happened: completed after the cancel
    assert "publish_products" not in scheduled.values()
    progress = await handle.query(PROGRESS_QUERY, result_type=DprProgress)
    assert progress.state == State.CANCELLED
    target = request.output_targets()["DEMOL0"][0][1]
    assert not s3_keys(s3, f"s3://{settings.s3.rs_bucket}/{OWNER}/{target}/")
    assert not s3_keys(s3, f"s3://{settings.s3.rs_work_bucket}/dpr/{safe_segment(handle.id)}")


async def test_a_cancel_during_publication_comes_too_late_and_the_result_says_so(
    client: Client, late_queue: str, session_collection: str, s3: Any, settings: Settings
) -> None:
    request = demo_request(OWNER, session_collection)
    GATES["publish_products"].arm()
    handle = await start_dpr(client, late_queue, request)
    await cancel(handle, "native", GATES["publish_products"])

    result = await asyncio.wait_for(handle.result(), timeout=180)
    (published,) = result.published
    assert any("came too late" in warning for warning in result.warnings), result.warnings
    progress = await handle.query(PROGRESS_QUERY, result_type=DprProgress)
    assert progress.state == State.COMPLETED and "too late" in progress.step
    async with httpx.AsyncClient(timeout=30) as http:
        url = f"{settings.catalog.url}/collections/{published['collection']}/items/{published['id']}"
        item = (await http.get(url)).json()
    (asset,) = item["assets"].values()
    assert s3_keys(s3, asset["href"].rstrip("/") + "/zarr.json")  # what the item points at is there


async def test_a_staging_cancelled_during_its_last_publication_completes_with_every_object_kept(
    client: Client, late_queue: str, simulator: Simulator, settings: Settings, s3: Any, collection: str
) -> None:
    """Before: the publication was cancelled at once (the workflow never learnt it went through), and the
    cleanup removed the objects of the item it had just published."""
    session = f"S1A_{uuid.uuid4().int % 10**20:020d}"
    simulator.add_session(session_id=session, satellite="S1A", channels=1, chunks_per_channel=2, chunk_size=MiB)
    request = CadipStagingInput.for_session(OWNER, session, collection)
    GATES["publish_staged_items"].arm()
    handle = await client.start_workflow(
        CADIP_STAGING, request, id=f"test-late-{uuid.uuid4()}", task_queue=late_queue, result_type=CadipStagingResult
    )
    await cancel(handle, "native", GATES["publish_staged_items"])

    result = await asyncio.wait_for(handle.result(), timeout=120)
    assert result.staging.items_staged == 1 and result.staging.assets_staged == 2
    progress = await handle.query(PROGRESS_QUERY, result_type=Progress)
    assert progress.state == State.COMPLETED and "too late" in progress.step
    async with httpx.AsyncClient(timeout=30) as http:
        item = (await http.get(f"{settings.catalog.url}/collections/{collection}/items/{session}")).json()
    hrefs = [asset["href"] for asset in item["assets"].values()]
    assert len(hrefs) == 2 and all(s3_keys(s3, href) for href in hrefs)
