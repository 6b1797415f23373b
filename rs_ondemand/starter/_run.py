"""Starting workflows from the command line and reading their `progress` query."""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from rs_ondemand.client import connect, ui_link
from rs_ondemand.config import Settings
from rs_ondemand.models.progress import Progress
from rs_ondemand.names import PROGRESS_QUERY
from rs_ondemand.telemetry import configure_tracing
from rs_ondemand.workflows._failures import root_cause


async def start(
    settings: Settings, workflow: str, request: BaseModel, workflow_id: str, result_type: type[BaseModel]
) -> tuple[Client, WorkflowHandle[Any, Any]]:
    """Start `workflow` under a request-derived id; a running duplicate is attached to, not started twice."""
    configure_tracing(settings.telemetry)
    client = await connect(settings.temporal)
    handle = await client.start_workflow(
        workflow,
        request,
        id=workflow_id,
        task_queue=settings.worker.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        result_type=result_type,
    )
    # Plain lines (not rich): ids and links must stay whole for copy-paste and scripts.
    print(f"workflow id: {workflow_id}", file=sys.stderr)
    link = ui_link(settings.temporal, workflow_id)
    if link:
        print(f"Temporal UI: {link}", file=sys.stderr)
    return client, handle


async def query_progress[P: Progress](handle: WorkflowHandle[Any, Any], kind: type[P]) -> P | None:
    """The `progress` query as `kind` (a DPR request's has its ADF alternatives and warnings too)."""
    try:
        progress: P = await handle.query(PROGRESS_QUERY, result_type=kind)
    except Exception:  # no worker has picked the workflow up yet, or it closed between two polls
        return None
    return progress


def print_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    print(json.dumps(value, indent=2, default=str))


def failure_text(err: WorkflowFailureError) -> str:
    cause = root_cause(err)
    return getattr(cause, "message", None) or str(cause)
