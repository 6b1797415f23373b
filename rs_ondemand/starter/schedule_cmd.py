"""`rs-ondemand schedule create|list|delete|backfill`: systematic PRIP/AUXIP staging on Temporal Schedules.

The commands over `rs_ondemand.starter.schedules`. Bad input is refused in one line with exit code 2 before
anything is created.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from typing import Annotated, Any

import typer

from rs_ondemand.starter._boundary import refuse

schedule_app = typer.Typer(no_args_is_help=True, help="Systematic PRIP/AUXIP staging on Temporal Schedules.")

ScheduleId = Annotated[str, typer.Argument(help="The schedule's id.", show_default=False)]
AS_JSON = typer.Option("--json", help="Print one JSON document.")


def _datetime(option: str, text: str) -> datetime:
    from rs_ondemand.models.timewindow import parse_datetime

    try:
        return parse_datetime(text)
    except ValueError as err:
        refuse(f"{option}: {err}")


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
    from rs_ondemand.config import Settings
    from rs_ondemand.models.common import check_safe_name
    from rs_ondemand.models.schedules import ScheduledStagingInput
    from rs_ondemand.starter._boundary import refused_if_invalid
    from rs_ondemand.starter.schedules import (
        connect_client,
        create_schedule,
        format_duration,
        iso,
        parse_duration,
        schedule_link,
    )

    try:
        check_safe_name(schedule_id)
    except ValueError as err:
        refuse(f"--id: {err}")
    if station not in ("prip", "auxip"):
        refuse(f"--station must be prip or auxip, not {station!r}")
    every_s = parse_duration("--every", every, minimum=1)
    overlap_s = parse_duration("--overlap", overlap)
    with refused_if_invalid():
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
    _check_station_collection(request)
    settings = Settings.load()
    queue = task_queue or settings.worker.task_queue

    async def go() -> list[datetime]:
        client = await connect_client(settings)
        description = await create_schedule(client, schedule_id, request, queue, paused, note)
        return list(description.info.next_action_times)

    next_runs = asyncio.run(go())
    window = format_duration(request.window_seconds + request.overlap_seconds)
    print(f"schedule id: {schedule_id}", file=sys.stderr)
    print(
        f"{request.station.upper()} {request.product_type} → {request.catalog_collection_identifier}, "
        f"every {format_duration(request.window_seconds)}: each run stages what was published in the {window} "
        f"before its time; task queue {queue}; {'paused' if paused else 'active'}",
        file=sys.stderr,
    )
    if not paused and next_runs:
        print(f"next run: {iso(next_runs[0])}", file=sys.stderr)
    link = schedule_link(settings, schedule_id)
    if link:
        print(f"Temporal UI: {link}", file=sys.stderr)


def _check_station_collection(request: Any) -> None:
    """A schedule naming a station collection its runs could not use is refused now, not at every run."""
    from rs_ondemand.activities.stations import check_station_collection
    from rs_ondemand.config import Settings
    from rs_ondemand.errors import OnDemandError

    collection = request.prip_collection if request.station == "prip" else request.auxip_collection
    try:
        registry = Settings.load().station_registry()
        asyncio.run(check_station_collection(registry, request.station, collection))
    except OnDemandError as err:
        refuse(str(err))


@schedule_app.command("list")
def list_schedules(as_json: Annotated[bool, AS_JSON] = False) -> None:
    """List the staging schedules (those that start ScheduledStaging)."""
    from rs_ondemand.config import Settings
    from rs_ondemand.starter.schedules import connect_client, format_duration, staging_schedules

    async def go() -> list[dict[str, Any]]:
        return await staging_schedules(await connect_client(Settings.load()))

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


@schedule_app.command("delete")
def delete(schedule_id: ScheduleId) -> None:
    """Delete a schedule: no more runs start; a run in progress finishes (cancel it with
    `rs-ondemand cancel --query "TemporalScheduledById = 'ID'"`)."""
    from rs_ondemand.config import Settings
    from rs_ondemand.starter.schedules import connect_client, delete_schedule

    async def go() -> None:
        await delete_schedule(await connect_client(Settings.load()), schedule_id)

    asyncio.run(go())
    print(f"schedule {schedule_id} deleted", file=sys.stderr)


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
    from rs_ondemand.config import Settings
    from rs_ondemand.starter.schedules import connect_client, iso, start_backfill, wait_for_runs

    start_at, end_at = _datetime("--start", start), _datetime("--end", end)
    if end_at <= start_at:
        refuse(f"--end {iso(end_at)} must be after --start {iso(start_at)}")

    async def go() -> int:
        client = await connect_client(Settings.load())
        plan, before = await start_backfill(client, schedule_id, start_at, end_at, max_runs)
        print(
            f"backfill {schedule_id}: {plan.runs} run(s) scheduled {iso(plan.first_run)} … {iso(plan.last_run)}, "
            f"staging what was published in [{iso(plan.covers_start)}, {iso(plan.covers_end)})",
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

    raise typer.Exit(asyncio.run(go()))
