"""Staging schedules on Temporal: what `rs-ondemand schedule …` creates, lists, deletes and backfills.

A schedule starts one `ScheduledStaging` run every interval; the run scheduled for `t` stages the products
published in `[t - every - overlap, t)` (docs/schedules.md). Input that cannot be acted on (an unknown schedule,
one of another shape, a bad duration) raises `Refused`: the command line says it in one line, exit code 2.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rs_ondemand.models.schedules import BackfillPlan, ScheduledStagingInput
from rs_ondemand.starter._boundary import refuse

if TYPE_CHECKING:
    from temporalio.client import Client, Schedule, ScheduleDescription
    from temporalio.common import TypedSearchAttributes

    from rs_ondemand.config import Settings

ACTION_ID_PREFIX = "scheduled-staging/"
"""Runs are `scheduled-staging/<schedule id>-<scheduled time>` (Temporal appends the time)."""

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNITS = (86400, 3600, 60, 1)


def parse_duration(option: str, text: str, minimum: int = 0) -> int:
    """Seconds of `90`, `90s`, `10m`, `1h30m`, `2d`; anything else is refused."""
    value = text.strip().lower()
    if value.isdigit():
        seconds = int(value)
    elif (match := _DURATION.fullmatch(value)) and value:
        seconds = sum(int(part) * unit for part, unit in zip(match.groups(), _UNITS, strict=True) if part)
    else:
        refuse(f"{option}: {text!r} is not a duration (e.g. 90s, 10m, 1h30m, 2d)")
    if seconds < minimum:
        refuse(f"{option}: {text!r} is shorter than {format_duration(minimum)}")
    return seconds


def format_duration(seconds: int | float) -> str:
    """`600` → `10m`, `5400` → `1h30m`, `0` → `0s`."""
    rest, parts = int(seconds), []
    for unit, name in zip(_UNITS, "dhms", strict=True):
        count, rest = divmod(rest, unit)
        if count:
            parts.append(f"{count}{name}")
    return "".join(parts) or "0s"


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def connect_client(settings: Settings) -> Client:
    from rs_ondemand.client import connect
    from rs_ondemand.telemetry import configure_tracing

    configure_tracing(settings.telemetry)
    return await connect(settings.temporal)


def schedule_link(settings: Settings, schedule_id: str) -> str | None:
    from urllib.parse import quote

    if not settings.temporal.ui_url:
        return None
    base = settings.temporal.ui_url.rstrip("/")
    return f"{base}/namespaces/{settings.temporal.namespace}/schedules/{quote(schedule_id, safe='')}"


def _is_not_found(err: BaseException) -> bool:
    from temporalio.service import RPCError, RPCStatusCode

    return isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND


# --- Create ---------------------------------------------------------------------------------------------------------


def build_schedule(
    schedule_id: str, request: ScheduledStagingInput, task_queue: str, paused: bool = False, note: str = ""
) -> Schedule:
    """The Temporal Schedule of `request`: one `ScheduledStaging` every `window_seconds`, buffered, never
    concurrent (see docs/schedules.md for the overlap policy)."""
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleIntervalSpec,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
        ScheduleState,
    )

    from rs_ondemand.names import SCHEDULED_STAGING

    return Schedule(
        action=ScheduleActionStartWorkflow(
            SCHEDULED_STAGING, request, id=f"{ACTION_ID_PREFIX}{schedule_id}", task_queue=task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=request.window_seconds))]),
        # BUFFER_ALL: a run that is late (slow station, waiting for an operator) delays the next ones instead of
        # making them skip: each buffered run still covers its own window (from its scheduled time), so no
        # publication window is lost and two runs never stage at the same time.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ALL, pause_on_failure=False),
        state=ScheduleState(paused=paused, note=note or None),
    )


def schedule_search_attributes(request: ScheduledStagingInput) -> TypedSearchAttributes:
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    from rs_ondemand.search_attributes import RS_COLLECTION, RS_OWNER, RS_STATION

    return TypedSearchAttributes(
        [
            SearchAttributePair(RS_OWNER, request.env.owner_id),
            SearchAttributePair(RS_STATION, request.station),
            SearchAttributePair(RS_COLLECTION, request.catalog_collection_identifier),
        ]
    )


async def create_schedule(
    client: Client, schedule_id: str, request: ScheduledStagingInput, task_queue: str, paused: bool, note: str
) -> ScheduleDescription:
    from temporalio.client import ScheduleAlreadyRunningError

    try:
        handle = await client.create_schedule(
            schedule_id,
            build_schedule(schedule_id, request, task_queue, paused, note),
            search_attributes=schedule_search_attributes(request),
        )
    except ScheduleAlreadyRunningError:
        refuse(f"schedule {schedule_id!r} already exists (delete it first: rs-ondemand schedule delete {schedule_id})")
    return await handle.describe()


# --- Read, list, delete ---------------------------------------------------------------------------------------------


async def describe(client: Client, schedule_id: str) -> ScheduleDescription:
    try:
        return await client.get_schedule_handle(schedule_id).describe()
    except Exception as err:
        if _is_not_found(err):
            refuse(f"no schedule {schedule_id!r}")
        raise


async def staging_input(client: Client, description: ScheduleDescription) -> ScheduledStagingInput:
    """The `ScheduledStagingInput` every run of the schedule gets; a schedule of anything else is refused."""
    from temporalio.client import ScheduleActionStartWorkflow

    from rs_ondemand.names import SCHEDULED_STAGING

    action = description.schedule.action
    if not isinstance(action, ScheduleActionStartWorkflow) or action.workflow != SCHEDULED_STAGING:
        refuse(f"schedule {description.id!r} does not start {SCHEDULED_STAGING}")
    (request,) = await client.data_converter.decode(list(action.args), [ScheduledStagingInput])
    assert isinstance(request, ScheduledStagingInput)
    return request


def interval(description: ScheduleDescription) -> tuple[timedelta, timedelta]:
    """`every` and `offset` of a schedule made of one interval (the shape `create` makes)."""
    spec = description.schedule.spec
    if len(spec.intervals) != 1 or spec.calendars or spec.cron_expressions:
        refuse(f"schedule {description.id!r} is not a single-interval schedule: backfill it with `temporal schedule`")
    only = spec.intervals[0]
    return only.every, only.offset or timedelta(0)


def summary(description: ScheduleDescription, request: ScheduledStagingInput) -> dict[str, Any]:
    every, _ = interval(description)
    info, state = description.info, description.schedule.state
    action = description.schedule.action
    return {
        "id": description.id,
        "station": request.station,
        "product_type": request.product_type,
        "catalog_collection": request.catalog_collection_identifier,
        "station_collection": request.prip_collection if request.station == "prip" else request.auxip_collection,
        "owner": request.env.owner_id,
        "every": format_duration(every.total_seconds()),
        "window_seconds": request.window_seconds,
        "overlap_seconds": request.overlap_seconds,
        "task_queue": getattr(action, "task_queue", None),
        "paused": state.paused,
        "note": state.note or "",
        "runs": info.num_actions,
        "running": [getattr(run, "workflow_id", None) for run in info.running_actions],
        "recent": [
            {
                "scheduled_at": iso(result.scheduled_at),
                "started_at": iso(result.started_at),
                "workflow_id": getattr(result.action, "workflow_id", None),
            }
            for result in info.recent_actions[-5:]
        ],
        "next_runs": [iso(t) for t in info.next_action_times[:3]],
    }


async def staging_schedules(client: Client) -> list[dict[str, Any]]:
    """The summaries of every schedule that starts ScheduledStaging, by id."""
    from rs_ondemand.names import SCHEDULED_STAGING

    found = []
    async for entry in await client.list_schedules():
        action = entry.schedule.action if entry.schedule else None
        if getattr(action, "workflow", None) != SCHEDULED_STAGING:
            continue
        try:
            description = await client.get_schedule_handle(entry.id).describe()
        except Exception as err:
            if _is_not_found(err):  # deleted since the (eventually consistent) listing
                continue
            raise
        found.append(summary(description, await staging_input(client, description)))
    return sorted(found, key=lambda s: s["id"])


async def delete_schedule(client: Client, schedule_id: str) -> None:
    try:
        await client.get_schedule_handle(schedule_id).delete()
    except Exception as err:
        if _is_not_found(err):
            refuse(f"no schedule {schedule_id!r}")
        raise


# --- Backfill -------------------------------------------------------------------------------------------------------


async def start_backfill(
    client: Client, schedule_id: str, start: datetime, end: datetime, max_runs: int
) -> tuple[BackfillPlan, set[tuple[str, str]]]:
    """Backfill `[start, end)` with the schedule's own runs: the plan, and the runs of its times that had already
    ended (they do not count for it)."""
    from temporalio.client import ScheduleBackfill, ScheduleOverlapPolicy

    from rs_ondemand.models.schedules import plan_backfill

    description = await describe(client, schedule_id)
    request = await staging_input(client, description)
    every, offset = interval(description)
    plan = plan_backfill(start, end, every, offset, request)
    if plan.runs > max_runs:
        refuse(
            f"a backfill of [{iso(start)}, {iso(end)}) takes {plan.runs} runs (one every "
            f"{format_duration(every.total_seconds())}), more than --max-runs {max_runs}"
        )
    before = await _closed_runs(client, schedule_id, plan)
    await client.get_schedule_handle(schedule_id).backfill(
        ScheduleBackfill(start_at=plan.start_at, end_at=plan.end_at, overlap=ScheduleOverlapPolicy.BUFFER_ALL)
    )
    return plan, before


def _run_times_query(schedule_id: str, plan: BackfillPlan) -> str:
    # Bounds half an interval away from the planned times: on the dev server's SQLite visibility, `<=` a
    # datetime search attribute's exact value does not match it.
    return (
        f"TemporalScheduledById = '{schedule_id}' AND TemporalScheduledStartTime > '{iso(plan.start_at)}' "
        f"AND TemporalScheduledStartTime < '{iso(plan.end_at)}'"
    )


async def _closed_runs(client: Client, schedule_id: str, plan: BackfillPlan) -> set[tuple[str, str]]:
    from temporalio.client import WorkflowExecutionStatus

    return {
        (execution.id, execution.run_id)
        async for execution in client.list_workflows(_run_times_query(schedule_id, plan))
        if execution.status != WorkflowExecutionStatus.RUNNING
    }


async def wait_for_runs(
    client: Client, schedule_id: str, plan: BackfillPlan, before: set[tuple[str, str]], poll_s: float = 1.0
) -> list[dict[str, Any]]:
    """Wait until every planned time has a run that ended after the backfill started; their outcomes."""
    from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

    from rs_ondemand.models.schedules import ScheduledStagingResult, run_times
    from rs_ondemand.starter._run import failure_text
    from rs_ondemand.workflows.scheduled_staging import SCHEDULED_START_TIME

    wanted = set(run_times(plan))
    ended: dict[datetime, dict[str, Any]] = {}
    while True:
        async for execution in client.list_workflows(_run_times_query(schedule_id, plan)):
            scheduled = execution.typed_search_attributes.get(SCHEDULED_START_TIME)
            if (
                scheduled not in wanted
                or scheduled in ended
                or (execution.id, execution.run_id) in before
                or execution.status == WorkflowExecutionStatus.RUNNING
            ):
                continue
            run: dict[str, Any] = {
                "scheduled_time": iso(scheduled),
                "workflow_id": execution.id,
                "run_id": execution.run_id,
                "status": execution.status.name if execution.status else "UNKNOWN",
            }
            handle = client.get_workflow_handle(
                execution.id, run_id=execution.run_id, result_type=ScheduledStagingResult
            )
            try:
                result = await handle.result()
            except WorkflowFailureError as err:
                run["error"] = failure_text(err)
            else:
                run |= {
                    "window": [iso(result.window_start), iso(result.window_end)],
                    "items_found": result.items_found,
                    "items_staged": result.staging.items_staged,
                    "items_skipped": result.staging.items_skipped,
                }
            ended[scheduled] = run
        if len(ended) == len(wanted):
            return [ended[t] for t in sorted(ended)]
        await asyncio.sleep(poll_s)
