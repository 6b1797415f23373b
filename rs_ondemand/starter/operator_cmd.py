"""`rs-ondemand retry|cancel WORKFLOW_ID | --query "…"`: operator actions on one request or many."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

Query = Annotated[
    str | None,
    typer.Option("--query", help="A visibility query, e.g. \"RsState = 'waiting_for_operator'\" (bulk action)."),
]


def _targets(workflow_id: str | None, query: str | None) -> None:
    if workflow_id is None and query is None:
        raise typer.BadParameter("give a WORKFLOW_ID or --query")
    if workflow_id is not None and query is not None:
        raise typer.BadParameter("give a WORKFLOW_ID or --query, not both")


async def _signal_all(workflow_id: str | None, query: str | None, signal: str, argument: object) -> int:
    from rs_ondemand.client import connect
    from rs_ondemand.config import Settings

    client = await connect(Settings.load().temporal)
    if workflow_id is not None:
        ids = [workflow_id]
    else:
        # Only top-level requests: children get their orders from their parent.
        ids = [
            w.id async for w in client.list_workflows(f"({query}) AND ExecutionStatus = 'Running'") if not w.parent_id
        ]
    for target in ids:
        await client.get_workflow_handle(target).signal(signal, argument)
        print(f"{signal}: {target}")
    return len(ids)


def retry(
    workflow_id: Annotated[str | None, typer.Argument(help="The request's workflow id.")] = None,
    query: Query = None,
    step: Annotated[
        str | None,
        typer.Option(
            "--step",
            help="Only this failed step: a name from waiting_steps (`status` shows each with its retry command).",
        ),
    ] = None,
) -> None:
    """Re-run the failed step of requests waiting for an operator."""
    from rs_ondemand.models.operator import RetrySignal
    from rs_ondemand.names import RETRY_SIGNAL

    _targets(workflow_id, query)
    count = asyncio.run(_signal_all(workflow_id, query, RETRY_SIGNAL, RetrySignal(step=step)))
    typer.echo(f"retry sent to {count} request(s)", err=True)


def cancel(
    workflow_id: Annotated[str | None, typer.Argument(help="The request's workflow id.")] = None,
    query: Query = None,
    reason: Annotated[str, typer.Option("--reason", help="Recorded with the cancellation.")] = "",
) -> None:
    """Stop requests with cleanup (the same as `temporal workflow cancel`)."""
    from rs_ondemand.models.operator import CancelSignal
    from rs_ondemand.names import CANCEL_SIGNAL

    _targets(workflow_id, query)
    count = asyncio.run(_signal_all(workflow_id, query, CANCEL_SIGNAL, CancelSignal(reason=reason)))
    typer.echo(f"cancel sent to {count} request(s)", err=True)
