"""`rs-ondemand schedule create|list|delete|backfill`: systematic PRIP/AUXIP staging on Temporal Schedules.

A schedule starts one `ScheduledStaging` run every interval; the run scheduled for `t` stages the products
published in `[t - every - overlap, t)` (docs/schedules.md). Bad input is refused in one line with exit code 2
before anything is created.
"""

from __future__ import annotations

import asyncio
import re
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rs_ondemand.starter.process_cmd import refuse

if TYPE_CHECKING:
    from temporalio.client import Client, ScheduleDescription

    from rs_ondemand.config import Settings
    from rs_ondemand.models.schedules import BackfillPlan, ScheduledStagingInput

schedule_app = typer.Typer(no_args_is_help=True, help="Systematic PRIP/AUXIP staging on Temporal Schedules.")

ScheduleId = Annotated[str, typer.Argument(help="The schedule's id.", show_default=False)]
AS_JSON = typer.Option("--json", help="Print one JSON document.")

ACTION_ID_PREFIX = "scheduled-staging/"
"""Runs are `scheduled-staging/<schedule id>-<scheduled time>` (Temporal appends the time)."""

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNITS = (86400, 3600, 60, 1)


def parse_duration(option: str, text: str, minimum: int = 0) -> int:
    """Seconds of `90`, `90s`, `10m`, `1h30m`, `2d`; anything else refuses the command (exit 2)."""
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


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _safe_id(schedule_id: str) -> str:
    from rs_ondemand.models.common import check_safe_name

    try:
        return check_safe_name(schedule_id)
    except ValueError as err:
        refuse(f"--id: {err}")


def _datetime(option: str, text: str) -> datetime:
    from rs_ondemand.models.timewindow import to_utc

    try:
        value = to_utc(text)
    except ValueError as err:
        refuse(f"{option}: {err}")
    assert isinstance(value, datetime)
    return value


async def _client(settings: Settings) -> Client:
    from rs_ondemand.client import connect
    from rs_ondemand.telemetry import configure_tracing

    configure_tracing(settings.telemetry)
    return await connect(settings.temporal)


def _schedule_link(settings: Settings, schedule_id: str) -> str | None:
    from urllib.parse import quote

    if not settings.temporal.ui_url:
        return None
    base = settings.temporal.ui_url.rstrip("/")
    return f"{base}/namespaces/{settings.temporal.namespace}/schedules/{quote(schedule_id, safe='')}"


def _is_not_found(err: BaseException) -> bool:
    from temporalio.service import RPCError, RPCStatusCode

    return isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND


async def _describe(client: Client, schedule_id: str) -> ScheduleDescription:
    try:
        return await client.get_schedule_handle(schedule_id).describe()
    except Exception as err:
        if _is_not_found(err):
            refuse(f"no schedule {schedule_id!r}")
        raise


async def _staging_input(client: Client, description: ScheduleDescription) -> ScheduledStagingInput:
    """The `ScheduledStagingInput` every run of the schedule gets; a schedule of anything else is refused."""
    from temporalio.client import ScheduleActionStartWorkflow

    from rs_ondemand.models.schedules import ScheduledStagingInput
    from rs_ondemand.names import SCHEDULED_STAGING

    action = description.schedule.action
    if not isinstance(action, ScheduleActionStartWorkflow) or action.workflow != SCHEDULED_STAGING:
        refuse(f"schedule {description.id!r} does not start {SCHEDULED_STAGING}")
    (request,) = await client.data_converter.decode(list(action.args), [ScheduledStagingInput])
    assert isinstance(request, ScheduledStagingInput)
    return request


def _interval(description: ScheduleDescription) -> tuple[timedelta, timedelta]:
    """`every` and `offset` of a schedule made of one interval (the shape `create` makes)."""
    spec = description.schedule.spec
    if len(spec.intervals) != 1 or spec.calendars or spec.cron_expressions:
        refuse(f"schedule {description.id!r} is not a single-interval schedule: backfill it with `temporal schedule`")
    interval = spec.intervals[0]
    return interval.every, interval.offset or timedelta(0)


# ------------------------------------------------------------------------------------------------- create


@schedule_app.command("create")
def create(
    schedule_id: Annotated[str, typer.Option("--id", help="Schedule id (letters, digits, '.', '_', '-').")],
    station: Annotated[str, typer.Option("--station", help="prip or auxip.")],
    product_type: Annotated[str, typer.Option("--product-type", help="Product type, e.g. S01SIWSLC, AUX_RESORB.")],
    catalog_collection: Annotated[str, typer.Option("--catalog-collection", help="Catalog collection to fill.")],
    prip_collection: Annotated[
        str | None, typer.Option("--prip-collection", help="PRIP station collection (default: prip).")
    ] = None,
    auxip_collection: Annotated[
        str | None, typer.Option("--auxip-collection", help="AUXIP station collection (default: all).")
    ] = None,
    every: Annotated[str, typer.Option("--every", help="Interval between runs, e.g. 10m (at least 1s).")] = "10m",
    overlap: Annotated[str, typer.Option("--overlap", help="Extra publication time each run re-checks.")] = "2m",
    owner: Annotated[str, typer.Option("--owner", envvar="RS_OWNER_ID", help="Owner of the staged data.")] = (
        "operator"
    ),
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused (backfills still run).")] = False,
    task_queue: Annotated[
        str | None, typer.Option("--task-queue", help="Task queue of the runs (default: the configured one).")
    ] = None,
    note: Annotated[str, typer.Option("--note", help="A note shown with the schedule.")] = "",
) -> None:
    """Create a schedule: every interval, stage the products of a type published since the previous run.

    The run scheduled for t stages what was published in [t - every - overlap, t); products already in the
    catalog collection are skipped, so overlapping windows never stage anything twice.
    """
    from pydantic import ValidationError

    from rs_ondemand.models.schedules import ScheduledStagingInput
    from rs_ondemand.starter.cli import _one_line

    schedule_id = _safe_id(schedule_id)
    if station not in ("prip", "auxip"):
        refuse(f"--station must be prip or auxip, not {station!r}")
    every_s = parse_duration("--every", every, minimum=1)
    overlap_s = parse_duration("--overlap", overlap)
    try:
        request = ScheduledStagingInput.model_validate(
            {
                "station": station,
                "env": {"owner_id": owner},
                "product_type": product_type,
                "catalog_collection_identifier": catalog_collection,
                "prip_collection": prip_collection or ("prip" if station == "prip" else None),
                "auxip_collection": auxip_collection,
                "window_seconds": every_s,
                "overlap_seconds": overlap_s,
            }
        )
    except ValidationError as err:
        refuse(_one_line(err))
    asyncio.run(_create(schedule_id, request, paused, task_queue, note))


def build_schedule(
    schedule_id: str, request: ScheduledStagingInput, task_queue: str, paused: bool = False, note: str = ""
) -> Any:
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


def schedule_search_attributes(request: ScheduledStagingInput) -> Any:
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    from rs_ondemand.search_attributes import RS_COLLECTION, RS_OWNER, RS_STATION

    return TypedSearchAttributes(
        [
            SearchAttributePair(RS_OWNER, request.env.owner_id),
            SearchAttributePair(RS_STATION, request.station),
            SearchAttributePair(RS_COLLECTION, request.catalog_collection_identifier),
        ]
    )


async def _create(
    schedule_id: str, request: ScheduledStagingInput, paused: bool, task_queue: str | None, note: str
) -> None:
    from temporalio.client import ScheduleAlreadyRunningError

    from rs_ondemand.config import Settings

    settings = Settings.load()
    client = await _client(settings)
    queue = task_queue or settings.worker.task_queue
    try:
        handle = await client.create_schedule(
            schedule_id,
            build_schedule(schedule_id, request, queue, paused, note),
            search_attributes=schedule_search_attributes(request),
        )
    except ScheduleAlreadyRunningError:
        refuse(f"schedule {schedule_id!r} already exists (delete it first: rs-ondemand schedule delete {schedule_id})")
    description = await handle.describe()
    window = format_duration(request.window_seconds + request.overlap_seconds)
    print(f"schedule id: {schedule_id}", file=sys.stderr)
    print(
        f"{request.station.upper()} {request.product_type} → {request.catalog_collection_identifier}, "
        f"every {format_duration(request.window_seconds)}: each run stages what was published in the {window} "
        f"before its time; task queue {queue}; {'paused' if paused else 'active'}",
        file=sys.stderr,
    )
    if not paused and description.info.next_action_times:
        print(f"next run: {_iso(description.info.next_action_times[0])}", file=sys.stderr)
    link = _schedule_link(settings, schedule_id)
    if link:
        print(f"Temporal UI: {link}", file=sys.stderr)


# --------------------------------------------------------------------------------------------------- list


def _summary(description: ScheduleDescription, request: ScheduledStagingInput) -> dict[str, Any]:
    every, _ = _interval(description)
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
                "scheduled_at": _iso(result.scheduled_at),
                "started_at": _iso(result.started_at),
                "workflow_id": getattr(result.action, "workflow_id", None),
            }
            for result in info.recent_actions[-5:]
        ],
        "next_runs": [_iso(t) for t in info.next_action_times[:3]],
    }


@schedule_app.command("list")
def list_schedules(as_json: Annotated[bool, AS_JSON] = False) -> None:
    """List the staging schedules (those that start ScheduledStaging)."""
    import json

    from rs_ondemand.config import Settings
    from rs_ondemand.names import SCHEDULED_STAGING

    async def go() -> list[dict[str, Any]]:
        client = await _client(Settings.load())
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
            found.append(_summary(description, await _staging_input(client, description)))
        return sorted(found, key=lambda s: s["id"])

    schedules = asyncio.run(go())
    if as_json:
        print(json.dumps(schedules, indent=2))
        return
    for s in schedules:
        last = s["recent"][-1]["scheduled_at"] if s["recent"] else "-"
        state = "paused" if s["paused"] else f"next {s['next_runs'][0] if s['next_runs'] else '-'}"
        print(
            f"{s['id']}  {s['station']} {s['product_type']} → {s['catalog_collection']}  every {s['every']} "
            f"overlap {format_duration(s['overlap_seconds'])}  {state}  last {last}  runs {s['runs']}"
        )
    if not schedules:
        print("no staging schedules", file=sys.stderr)


# ------------------------------------------------------------------------------------------------- delete


@schedule_app.command("delete")
def delete(schedule_id: ScheduleId) -> None:
    """Delete a schedule: no more runs start; a run in progress finishes (cancel it with
    `rs-ondemand cancel --query "TemporalScheduledById = 'ID'"`)."""
    from rs_ondemand.config import Settings

    async def go() -> None:
        client = await _client(Settings.load())
        try:
            await client.get_schedule_handle(schedule_id).delete()
        except Exception as err:
            if _is_not_found(err):
                refuse(f"no schedule {schedule_id!r}")
            raise

    asyncio.run(go())
    print(f"schedule {schedule_id} deleted", file=sys.stderr)


# ----------------------------------------------------------------------------------------------- backfill


@schedule_app.command("backfill")
def backfill(
    schedule_id: ScheduleId,
    start: Annotated[str, typer.Option("--start", help="Start of the publication window (ISO 8601 or a date).")],
    end: Annotated[str, typer.Option("--end", help="End of the publication window (excluded).")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait for every run and print their results.")] = False,
    max_runs: Annotated[int, typer.Option("--max-runs", help="Refuse a backfill of more runs.", min=1)] = 1000,
) -> None:
    """Stage what was published in a past window [start, end) with the schedule's own runs.

    Temporal runs the schedule's action for every scheduled time that covers the window (one window each, from
    its scheduled time), one after another. Products already in the catalog are skipped: a backfill over
    windows that already ran stages nothing twice. Prints the plan as JSON; with --wait, the runs' results too
    (exit code 1 if one failed).
    """
    start_at, end_at = _datetime("--start", start), _datetime("--end", end)
    if end_at <= start_at:
        refuse(f"--end {_iso(end_at)} must be after --start {_iso(start_at)}")
    code = asyncio.run(_backfill(schedule_id, start_at, end_at, wait, max_runs))
    raise typer.Exit(code)


async def _backfill(schedule_id: str, start: datetime, end: datetime, wait: bool, max_runs: int) -> int:
    import json

    from temporalio.client import ScheduleBackfill, ScheduleOverlapPolicy

    from rs_ondemand.config import Settings
    from rs_ondemand.models.schedules import plan_backfill

    client = await _client(Settings.load())
    description = await _describe(client, schedule_id)
    request = await _staging_input(client, description)
    every, offset = _interval(description)
    plan = plan_backfill(start, end, every, offset, request)
    if plan.runs > max_runs:
        every_text = format_duration(every.total_seconds())
        refuse(
            f"a backfill of [{_iso(start)}, {_iso(end)}) takes {plan.runs} runs (one every {every_text}), "
            f"more than --max-runs {max_runs}"
        )
    before = await _closed_runs(client, schedule_id, plan)
    await client.get_schedule_handle(schedule_id).backfill(
        ScheduleBackfill(start_at=plan.start_at, end_at=plan.end_at, overlap=ScheduleOverlapPolicy.BUFFER_ALL)
    )
    print(
        f"backfill {schedule_id}: {plan.runs} run(s) scheduled {_iso(plan.first_run)} … {_iso(plan.last_run)}, "
        f"staging what was published in [{_iso(plan.covers_start)}, {_iso(plan.covers_end)})",
        file=sys.stderr,
    )
    output: dict[str, Any] = {"schedule_id": schedule_id, "plan": plan.model_dump(mode="json")}
    code = 0
    if wait:
        runs = await wait_for_runs(client, schedule_id, plan, before)
        output["runs"] = runs
        code = 1 if any(run["status"] != "COMPLETED" for run in runs) else 0
    print(json.dumps(output, indent=2))
    return code


def _run_times_query(schedule_id: str, plan: BackfillPlan) -> str:
    # Bounds half an interval away from the planned times: on the dev server's SQLite visibility, `<=` a
    # datetime search attribute's exact value does not match it.
    return (
        f"TemporalScheduledById = '{schedule_id}' AND TemporalScheduledStartTime > '{_iso(plan.start_at)}' "
        f"AND TemporalScheduledStartTime < '{_iso(plan.end_at)}'"
    )


async def _closed_runs(client: Client, schedule_id: str, plan: BackfillPlan) -> set[tuple[str, str]]:
    """Runs of the planned times that had already ended before the backfill (they do not count for it)."""
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
                "scheduled_time": _iso(scheduled),
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
                    "window": [_iso(result.window_start), _iso(result.window_end)],
                    "items_found": result.items_found,
                    "items_staged": result.staging.items_staged,
                    "items_skipped": result.staging.items_skipped,
                }
            ended[scheduled] = run
        if len(ended) == len(wanted):
            return [ended[t] for t in sorted(ended)]
        await asyncio.sleep(poll_s)
