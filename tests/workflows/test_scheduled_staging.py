"""ScheduledStaging on real Temporal Schedules: live runs every 2 s, and a backfill over a past window that stages
exactly the products published in it, each once, although consecutive windows overlap."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    ScheduleBackfill,
    ScheduleHandle,
    ScheduleOverlapPolicy,
    WorkflowExecutionStatus,
)

from rs_ondemand.config import Settings
from rs_ondemand.models.schedules import (
    BackfillPlan,
    ScheduledStagingInput,
    ScheduledStagingResult,
    plan_backfill,
    published_filter,
    run_times,
)
from rs_ondemand.names import PROGRESS_QUERY
from rs_ondemand.starter.schedules import build_schedule, wait_for_runs
from rs_ondemand.workflows.scheduled_staging import SCHEDULED_START_TIME, ScheduledStaging
from tests.support.catalog import stac_ids
from tests.support.prip import EARLIEST, OWNER, add_published_products, scheduled_request
from tests.support.stack import Simulator


async def finished_runs(client: Client, schedule_id: str) -> list[tuple[datetime, ScheduledStagingResult]]:
    """(scheduled time, result) of every completed run of the schedule, by scheduled time."""
    runs = []
    async for execution in client.list_workflows(f"TemporalScheduledById = '{schedule_id}'"):
        if execution.status == WorkflowExecutionStatus.COMPLETED:
            handle = client.get_workflow_handle(
                execution.id, run_id=execution.run_id, result_type=ScheduledStagingResult
            )
            result = await handle.result()
            runs.append((execution.typed_search_attributes.get(SCHEDULED_START_TIME), result))
    return sorted(runs, key=lambda run: run[0])


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.5)


@asynccontextmanager
async def staging_schedule(
    client: Client, request: ScheduledStagingInput, task_queue: str, paused: bool
) -> AsyncIterator[tuple[str, ScheduleHandle]]:
    """A schedule of the test's own, deleted at the end with its runs still in progress cancelled."""
    schedule_id = f"test-{uuid.uuid4().hex[:10]}"
    handle = await client.create_schedule(schedule_id, build_schedule(schedule_id, request, task_queue, paused=paused))
    try:
        yield schedule_id, handle
    finally:
        running = {getattr(run, "workflow_id", "") for run in (await handle.describe()).info.running_actions}
        await handle.delete()
        async for execution in client.list_workflows(
            f"TemporalScheduledById = '{schedule_id}' AND ExecutionStatus = 'Running'"
        ):
            running.add(execution.id)
        for workflow_id in running - {""}:
            run = client.get_workflow_handle(workflow_id)
            # Cancelled, or ended meanwhile: the point is that nothing is left running on the session's queue.
            with contextlib.suppress(Exception):
                await run.cancel()
                await asyncio.wait_for(run.result(), timeout=60)


async def test_a_run_started_by_hand_covers_the_window_before_now(
    client: Client, task_queue: str, settings: Settings, simulator: Simulator, collection: str
) -> None:
    """Without a scheduled time (started by hand) a run's window ends at its start; only products published in
    it are staged, not those published before it or later."""
    product_type = f"S{uuid.uuid4().hex[:8].upper()}"
    now = datetime.now(UTC)
    recent = add_published_products(simulator, product_type, now - timedelta(hours=5), 3)  # published 3h39m to 59m ago
    add_published_products(simulator, product_type, now - timedelta(hours=12), 2)  # published more than 7 h ago
    add_published_products(simulator, product_type, now + timedelta(hours=1), 2)  # to be published in hours
    request = scheduled_request(product_type, collection, every_s=4 * 3600, overlap_s=60)

    result = await client.execute_workflow(
        ScheduledStaging.run, request, id=f"test-scheduled-{uuid.uuid4()}", task_queue=task_queue
    )

    assert now <= result.scheduled_time <= datetime.now(UTC)
    assert (result.window_start, result.window_end) == request.window(result.scheduled_time)
    assert result.filter == published_filter(result.window_start, result.window_end, product_type)
    assert result.items_found == result.staging.items_staged == 3
    assert await stac_ids(settings, collection) == set(recent)


async def test_a_schedule_stages_what_is_published_run_after_run(
    client: Client, task_queue: str, settings: Settings, simulator: Simulator, collection: str
) -> None:
    """Every 2 s, each run looking back 4 h: products the station publishes between two runs are staged by the
    next one, and the runs in between stage nothing twice."""
    product_type = f"S{uuid.uuid4().hex[:8].upper()}"
    first = add_published_products(simulator, product_type, datetime.now(UTC) - timedelta(hours=5), 3)
    request = scheduled_request(product_type, collection, every_s=2, overlap_s=4 * 3600)

    async with staging_schedule(client, request, task_queue, paused=False) as (schedule_id, _):

        async def staged_by_a_run(count: int, after: datetime | None = None) -> datetime:
            found: list[datetime] = []

            async def check() -> bool:
                runs = await finished_runs(client, schedule_id)
                found[:] = [t for t, r in runs if r.staging.items_staged == count and (after is None or t > after)]
                return bool(found)

            await eventually(check, 90, f"a run of {schedule_id} that stages {count} products")
            return found[0]

        first_run = await staged_by_a_run(3)
        assert await stac_ids(settings, collection) == set(first)
        # The station publishes more (backdated, as if indexed late: the look-back finds them).
        second = add_published_products(simulator, product_type, datetime.now(UTC) - timedelta(hours=4, minutes=5), 3)
        await staged_by_a_run(3, after=first_run)

    runs = await finished_runs(client, schedule_id)
    assert len(runs) >= 2
    assert await stac_ids(settings, collection) == set(first) | set(second)
    assert sum(result.staging.items_staged for _, result in runs) == 6  # every product staged by one run only
    for scheduled, result in runs:
        assert result.scheduled_time == scheduled  # the window comes from the time the run was scheduled for
        assert result.window_end == scheduled and result.window_end - result.window_start == request.lookback
        assert scheduled.timestamp() % 2 == 0  # on the schedule's grid, even when a run had to wait


async def backfill(client: Client, schedule_id: str, handle: ScheduleHandle, plan: BackfillPlan) -> list[Any]:
    closed = {  # runs of an earlier backfill: not this one's
        (e.id, e.run_id)
        async for e in client.list_workflows(f"TemporalScheduledById = '{schedule_id}'")
        if e.status != WorkflowExecutionStatus.RUNNING
    }
    await handle.backfill(
        ScheduleBackfill(start_at=plan.start_at, end_at=plan.end_at, overlap=ScheduleOverlapPolicy.BUFFER_ALL)
    )
    try:
        return await asyncio.wait_for(wait_for_runs(client, schedule_id, plan, closed, poll_s=0.5), timeout=180)
    except TimeoutError:
        raise AssertionError(f"backfill runs did not all end: {await runs_seen(client, schedule_id)}") from None


async def runs_seen(client: Client, schedule_id: str) -> list[str]:
    """What each run of the schedule is doing (for failure messages)."""
    seen = []
    async for execution in client.list_workflows(f"TemporalScheduledById = '{schedule_id}'"):
        progress = None
        with contextlib.suppress(Exception):
            progress = await client.get_workflow_handle(execution.id, run_id=execution.run_id).query(PROGRESS_QUERY)
        seen.append(f"{execution.id} {execution.status.name if execution.status else '?'} {progress}")
    description = await client.get_schedule_handle(schedule_id).describe()
    return [*seen, f"schedule: {description.info}"]


async def test_a_backfill_stages_exactly_the_products_published_in_the_window_once(
    client: Client, task_queue: str, settings: Settings, simulator: Simulator, s3: Any, collection: str
) -> None:
    """Backfill [S, E) of an hourly schedule with a 10-minute overlap: the runs at S+1h … E cover exactly
    [S - 10 min, E). Every product published there is staged, once; none published before or after; products in
    the overlap of two runs are found by both and staged by the first. A second backfill stages nothing."""
    # Fixed names: the generated products (and so their publication times) are the same on every run.
    product_type = "SCHEDBACKFILL"
    start, end, every, overlap = datetime(2026, 3, 10, 6, tzinfo=UTC), datetime(2026, 3, 10, 10, tzinfo=UTC), 3600, 600
    published = {
        **add_published_products(simulator, product_type, start - timedelta(hours=6), 3),  # all before S - overlap
        **add_published_products(simulator, product_type, start - EARLIEST + timedelta(minutes=1), 3),  # all in [S, E)
        **add_published_products(simulator, product_type, end - EARLIEST, 3),  # all at E or after
        # every 3.75 min over 6 h: publications on both sides of S - overlap, S, E, and in the overlaps
        **add_published_products(simulator, product_type, start - timedelta(hours=4), 96, step_s=225),
    }
    request = scheduled_request(product_type, collection, every_s=every, overlap_s=overlap)
    plan = plan_backfill(start, end, timedelta(seconds=every), timedelta(0), request)
    assert (plan.first_run, plan.last_run, plan.runs) == (start + timedelta(hours=1), end, 4)
    assert (plan.covers_start, plan.covers_end) == (start - timedelta(seconds=overlap), end)
    expected = {name for name, at in published.items() if plan.covers_start <= at < plan.covers_end}
    in_overlaps = {
        name for name, at in published.items() for t in run_times(plan)[:-1] if t - timedelta(seconds=overlap) <= at < t
    }
    outside = set(published) - expected
    assert len(expected) > 20 and in_overlaps and outside, "the generated data must exercise every boundary"
    assert any(at < plan.covers_start for at in published.values()) and any(at >= end for at in published.values())

    async with staging_schedule(client, request, task_queue, paused=True) as (schedule_id, handle):
        runs = await backfill(client, schedule_id, handle, plan)
        assert [run["status"] for run in runs] == ["COMPLETED"] * 4
        assert [run["scheduled_time"] for run in runs] == [
            t.isoformat().replace("+00:00", "Z") for t in run_times(plan)
        ]
        assert await stac_ids(settings, collection) == expected
        assert sum(run["items_staged"] for run in runs) == len(expected)  # no product staged by two runs
        assert sum(run["items_found"] for run in runs) == len(expected) + len(in_overlaps)
        assert sum(run["items_skipped"] for run in runs) == len(in_overlaps)
        listed = s3.list_objects_v2(Bucket=settings.s3.rs_bucket, Prefix=f"{OWNER}/{collection}/", MaxKeys=1000)
        assert listed["KeyCount"] == len(expected)

        again = await backfill(client, schedule_id, handle, plan)
        assert [run["status"] for run in again] == ["COMPLETED"] * 4
        assert sum(run["items_staged"] for run in again) == 0
        assert sum(run["items_skipped"] for run in again) == len(expected) + len(in_overlaps)
        assert await stac_ids(settings, collection) == expected
