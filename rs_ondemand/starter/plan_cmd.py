"""`rs-ondemand plan dpr REQUEST.json`: what a `DprProcessing` request would do, without doing it.

The units and the ADFs' STAC queries come from the task table alone (no stack needed). When the stack is reachable
and a worker polls the task queue, a dry run of the request (`dry_run: true`) adds what only the stack knows:
which ADF alternatives find something, the EOPF payload, and EOPF's validation of it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rs_ondemand.starter._boundary import refuse
from rs_ondemand.starter.process_cmd import RequestFile, load_request

if TYPE_CHECKING:
    from temporalio.client import Client

    from rs_ondemand.config import Settings
    from rs_ondemand.models.dpr import AlternativeTried, DprProcessIn, DprProcessResult, ProcessingPlan

plan_app = typer.Typer(no_args_is_help=True, help="Show what a request would do, without doing it.")

CONNECT_TIMEOUT_S = 5.0
"""How long the Temporal frontend may take to answer before the plan goes on without the stack."""


@plan_app.command("dpr")
def plan_dpr(
    request_file: RequestFile,
    tasktable_file: Annotated[
        Path | None,
        typer.Option("--tasktable", help="Use this task table file instead of the request's or the registry's."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    timeout_s: Annotated[
        float, typer.Option("--timeout", help="Seconds the dry run may take before it is cancelled.", min=1)
    ] = 300.0,
) -> None:
    """Plan a DprProcessing request: its units and ADF queries, then, if the stack is up, a dry run.

    The dry run searches the ADF alternatives without staging anything, writes the payload and lets EOPF
    validate it; nothing is processed or published. Without a reachable stack only the units and ADFs are shown.
    """
    from pydantic import ValidationError

    from rs_ondemand.config import Settings
    from rs_ondemand.dpr.plan import plan_request
    from rs_ondemand.dpr.registry import get_tasktable, load_tasktable_file
    from rs_ondemand.errors import InvalidInputError

    request = load_request(request_file)
    try:
        if tasktable_file is not None:
            tasktable, source = load_tasktable_file(tasktable_file), f"file {tasktable_file}"
        elif request.tasktable is not None:
            tasktable, source = request.tasktable, "the request's"
        else:
            tasktable, source = get_tasktable(request.processor_name), f"registry ({request.processor_name})"
        plan = plan_request(request, tasktable)
        settings = Settings.load()
        if plan.unresolved or any(adf.supplied and adf.supplied.id for unit in plan.unit_plans for adf in unit.adfs):
            plan = asyncio.run(_with_catalog(settings, request, tasktable)) or plan
    except (InvalidInputError, ValidationError) as err:
        refuse(str(err))

    output: dict[str, Any] = {
        "units": plan.units,
        "adfs": adf_listing(plan),
        "variables": plan.variables,
        "input_properties": plan.input_properties,
        "unresolved": plan.unresolved,
        "warnings": plan.warnings,
    }
    dry_run = request.model_copy(update={"dry_run": True, "tasktable": tasktable})
    found = asyncio.run(_dry_run(settings, request, dry_run, timeout_s))
    found["warnings"] = list(dict.fromkeys([*plan.warnings, *found.get("warnings", [])]))
    output |= found
    if as_json:
        print(json.dumps(output, indent=2, default=str))
    else:
        _show(request, plan, source, output)


async def _with_catalog(settings: Settings, request: DprProcessIn, tasktable: dict[str, Any]) -> ProcessingPlan | None:
    """The plan with the input products' properties and supplied ADF items read from the catalog; None (and a
    line on stderr) when the catalog cannot be reached."""
    import httpx

    from rs_ondemand.activities.catalog_client import CatalogClient
    from rs_ondemand.activities.processor import plan_with_catalog
    from rs_ondemand.errors import CatalogError

    async with httpx.AsyncClient() as http:
        try:
            return await plan_with_catalog(CatalogClient(settings.catalog, http), request, tasktable)
        except CatalogError as err:
            _note(f"catalog not reachable at {settings.catalog.url}: input product properties unresolved ({err})")
            return None


def adf_listing(plan: ProcessingPlan) -> list[dict[str, Any]]:
    """Every ADF of every unit, with its alternatives as STAC queries and their target collections."""
    return [
        {
            "unit": unit.name,
            "adf": adf.name,
            "mandatory": adf.mandatory,
            "alternatives": [alternative.model_dump(mode="json") for alternative in adf.alternatives],
            **({"supplied": adf.supplied.model_dump(mode="json")} if adf.supplied is not None else {}),
        }
        for unit in plan.unit_plans
        for adf in unit.adfs
    ]


def adf_choices(alternatives: list[AlternativeTried]) -> list[dict[str, Any]]:
    """The alternatives tried, grouped per ADF in the order tried, with the one that won (the first found)."""
    choices: dict[tuple[str, str], dict[str, Any]] = {}
    for tried in alternatives:
        choice = choices.setdefault(
            (tried.unit, tried.adf), {"unit": tried.unit, "adf": tried.adf, "winner": None, "tried": []}
        )
        entry = tried.model_dump(mode="json", exclude={"unit", "adf", "query"})
        choice["tried"].append(entry)
        if tried.outcome == "found" and choice["winner"] is None:
            choice["winner"] = entry
    return list(choices.values())


async def _dry_run(
    settings: Settings, request: DprProcessIn, dry_run: DprProcessIn, timeout_s: float
) -> dict[str, Any]:
    """The keys only the stack can give; {} (and a line on stderr) when it is not reachable."""
    from rs_ondemand.client import connect
    from rs_ondemand.models.dpr import DprProcessResult
    from rs_ondemand.names import DPR_PROCESSING
    from rs_ondemand.starter._run import start
    from rs_ondemand.starter.request_ids import dpr_workflow_id

    queue = settings.worker.task_queue
    try:
        client = await asyncio.wait_for(connect(settings.temporal), CONNECT_TIMEOUT_S)
    except Exception as err:  # refused, unresolvable, or no answer in time (TimeoutError)
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        _note(f"stack not reachable at {settings.temporal.address}: units only, no dry run ({reason})")
        return {}
    if not await _has_worker(client, settings.temporal.namespace, queue):
        _note(f"no worker polls task queue {queue!r}: units only, no dry run")
        return {}

    workflow_id = f"plan-{dpr_workflow_id(request)}-{uuid.uuid4().hex[:8]}"
    _, handle = await start(settings, DPR_PROCESSING, dry_run, workflow_id, DprProcessResult)
    keys: dict[str, Any] = {"dry_run_workflow_id": workflow_id}
    outcome = asyncio.ensure_future(handle.result())
    try:
        stopped = await _until_done_or_stuck(client, handle, outcome, timeout_s)
    except BaseException:  # interrupted: the dry run must not outlive the command
        await _cancel(handle, outcome)
        raise
    if stopped is None and outcome.exception() is None:
        result: DprProcessResult = outcome.result()
        return keys | {
            "adf_choices": adf_choices(result.alternatives),
            "warnings": result.warnings,
            "payload_yaml": result.payload_yaml,
            "eopf_validation": eopf_validation(result),
        }
    if stopped is None:
        error = _failure_message(outcome.exception())
    else:
        error = stopped
        await _cancel(handle, outcome)
    keys["eopf_validation"] = {"ok": False, "error": error}
    progress = await _dpr_progress(handle)
    if progress is not None:
        keys |= {"adf_choices": adf_choices(progress.alternatives), "warnings": progress.warnings}
    return keys


def eopf_validation(result: DprProcessResult) -> dict[str, Any]:
    """EOPF's verdict on the payload: `dry_run` is a valid one; `invalid` comes with EOPF's reason (typically an
    ADF path that does not exist yet, since a dry run does not stage the ADFs it finds)."""
    verdict: dict[str, Any] = {"ok": result.processor_status == "dry_run", "processor_status": result.processor_status}
    if result.validation_error:
        verdict["error"] = result.validation_error
    return verdict


async def _has_worker(client: Client, namespace: str, queue: str) -> bool:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        ),
        timeout=_timedelta(CONNECT_TIMEOUT_S),
    )
    return bool(described.pollers)


async def _until_done_or_stuck(
    client: Client, handle: Any, outcome: asyncio.Future[Any], timeout_s: float
) -> str | None:
    """None once the dry run ended; else why it will not end by itself (waiting for an operator, too long).
    While a step is retried (a station down), each new failed attempt is said on stderr: the plan is not idle."""
    from rs_ondemand.models.progress import State
    from rs_ondemand.starter.watch import POLL_S, read_request

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    said = None
    while True:
        done, _ = await asyncio.wait({outcome}, timeout=POLL_S)
        if done:
            return None
        try:
            view = await read_request(client, handle.id)
        except Exception:  # the frontend did not answer this time: look again at the next poll
            view = None
        progress = view.progress if view else None
        if view and view.attempt_error and view.attempt_error != said:
            _note(f"dry run retrying after: {view.attempt_error}")
            said = view.attempt_error
        # A dry run has no operator: a step that gave up (e.g. EOPF refusing the payload) is its answer.
        if progress is not None and progress.state == State.WAITING_FOR_OPERATOR:
            return progress.last_error or f"stopped at {progress.step!r}"
        if loop.time() >= deadline:
            step = f" (at {progress.step!r})" if progress is not None and progress.step else ""
            return f"the dry run did not finish within {timeout_s:g} s{step}"


async def _cancel(handle: Any, outcome: asyncio.Future[Any]) -> None:
    """Cancel the dry run (its cleanup removes the payload) and give it a moment to end."""
    try:
        await handle.cancel()
        await asyncio.wait({outcome}, timeout=15)
    except Exception:  # best effort: the command reports the dry run's problem, not the cancel's
        pass
    if not outcome.done():
        outcome.cancel()
    elif not outcome.cancelled():
        outcome.exception()  # retrieved: no "exception never retrieved" warning


async def _dpr_progress(handle: Any) -> Any:
    from rs_ondemand.models.dpr import DprProgress
    from rs_ondemand.names import PROGRESS_QUERY

    try:
        return await handle.query(PROGRESS_QUERY, result_type=DprProgress)
    except Exception:
        return None


def _failure_message(err: BaseException | None) -> str:
    from temporalio.client import WorkflowFailureError

    from rs_ondemand.starter._run import failure_text

    if isinstance(err, WorkflowFailureError):
        return failure_text(err)
    return f"{type(err).__name__}: {err}"


def _timedelta(seconds: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=seconds)


def _note(message: str) -> None:
    print(message, file=sys.stderr)


# --- The readable summary -------------------------------------------------------------------------------------------


def _show(request: DprProcessIn, plan: ProcessingPlan, source: str, output: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # soft_wrap: long ids, queries and the payload stay whole lines (copy-paste), the terminal wraps them.
    console = Console(highlight=False, soft_wrap=True)
    what = f"pipeline {request.pipeline}" if request.pipeline else f"unit {request.unit}"
    console.print(f"[bold]{escape(request.processor_name)}[/bold], {escape(what)} (task table: {escape(source)})")

    units = Table(title="Units", title_justify="left", show_lines=True)
    for column in ("unit", "module", "inputs", "ADFs", "outputs"):
        units.add_column(column)
    inputs = {unit.name: {spec.name: spec for spec in unit.inputs} for unit in plan.unit_plans}
    for unit in plan.units:

        def names(kind: str, unit: dict[str, Any] = unit) -> str:
            return "\n".join(_entry(entry, inputs.get(unit["name"], {})) for entry in unit.get(kind, []))

        units.add_row(
            escape(unit["name"]),
            escape(str(unit.get("module", ""))),
            names("input_products"),
            names("input_adfs"),
            names("output_products"),
        )
    console.print(units)
    if plan.variables:
        console.print("Variables: " + escape(", ".join(f"{k}={v}" for k, v in plan.variables.items())))
    for name, properties in plan.input_properties.items():
        console.print(f"Input {escape(name)}: " + escape(", ".join(f"{k}={v}" for k, v in properties.items())))
    if plan.unresolved:
        unresolved = ", ".join("{" + key + "}" for key in plan.unresolved)
        console.print(f"[yellow]Unresolved without the catalog:[/yellow] {escape(unresolved)}")

    dry_run = "adf_choices" in output
    choices = {(choice["unit"], choice["adf"]): choice for choice in output.get("adf_choices", [])}
    for adf in output["adfs"]:
        need = "mandatory" if adf["mandatory"] else "optional"
        console.print(f"\n[bold]ADF {escape(adf['adf'])}[/bold] of {escape(adf['unit'])} ({need})")
        choice = choices.get((adf["unit"], adf["adf"]), {"tried": [], "winner": None})
        if "supplied" in adf:
            supplied = adf["supplied"]
            where = f"{supplied['id']} in {supplied['collection']}" if supplied["id"] else ", ".join(supplied["hrefs"])
            console.print(f"  supplied by the request: {escape(where)}")
        elif not adf["alternatives"]:
            console.print("  no alternative in the task table")
        # Alternatives are tried one after the other in the plan's order: the n-th tried is the n-th planned.
        for index, alternative in enumerate(adf["alternatives"]):
            tried = choice["tried"][index] if index < len(choice["tried"]) else None
            timeout = alternative["timeout_seconds"]
            console.print(
                f"  {_order(alternative['order'])}. {escape(str(alternative['product_type']))} → "
                f"{escape(alternative['collection'])} ({f'{timeout} s' if timeout else 'no timeout'}): "
                f"{_outcome(tried, choice['winner'], dry_run)}"
            )
            console.print(f"     [dim]{escape(json.dumps(alternative['query'], separators=(',', ':')))}[/dim]")

    for warning in output.get("warnings", []):
        console.print(f"\n[yellow]warning:[/yellow] {escape(warning)}")
    validation = output.get("eopf_validation")
    if validation is not None:
        status = validation.get("processor_status")
        # The reason only (its first line); --json has EOPF's output tail too.
        reason = escape(validation.get("error", "").splitlines()[0]) if validation.get("error") else ""
        if validation["ok"]:
            console.print(f"\nEOPF validation: [green]{escape(status)}[/green]")
        elif status is not None:
            console.print(f"\nEOPF validation: [red]{escape(status)}[/red]: {reason}")
        else:
            console.print(f"\nDry run [red]failed[/red]: {reason}")
    if "payload_yaml" in output:
        console.print("\n[bold]Payload[/bold]")
        console.print(output["payload_yaml"].rstrip("\n"), markup=False)
    if "dry_run_workflow_id" in output:
        console.print(f"\n[dim]dry run: {escape(output['dry_run_workflow_id'])}[/dim]")


def _entry(entry: dict[str, Any], inputs: dict[str, Any]) -> str:
    from rich.markup import escape

    text = escape(entry["name"]) + ("" if entry.get("mandatory", True) else " (optional)")
    spec = inputs.get(entry["name"])
    if spec is not None and entry.get("origin") == "pipeline_input":
        text += f" ← {escape(spec.item_id)} in {escape(spec.collection)}"
    return text


def _order(order: float | None) -> str:
    return "-" if order is None else f"{order:g}"


def _outcome(tried: dict[str, Any] | None, winner: dict[str, Any] | None, was_run: bool) -> str:
    from rich.markup import escape

    if not was_run:
        return "[dim]not searched (no dry run)[/dim]"
    if tried is None:
        return "[dim]not tried[/dim]"
    took = f" in {tried['duration_s']:g} s"
    if tried is winner:
        return f"[green]found, chosen[/green]{took}: {escape(', '.join(tried['items']))}"
    outcome = tried["outcome"].replace("_", " ")
    return f"[yellow]{outcome}[/yellow]{took}" + (f": {escape(', '.join(tried['items']))}" if tried["items"] else "")
