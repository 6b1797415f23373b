"""Watching a request from the command line: `status`'s summary and `--wait`'s live view share one reading.

A request's `progress` query says where it is; while a step is retried automatically its `last_error` is still
empty, so the latest failed attempt is read from Temporal itself (`describe()`: the pending activities of the
request and of its children). Nothing here changes a request.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.filesize import decimal
from rich.progress_bar import ProgressBar
from rich.text import Text
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from rs_ondemand.models.dpr import DprProgress
from rs_ondemand.models.progress import Progress, State
from rs_ondemand.names import DPR_PROCESSING, PROCESSING_UNIT

if TYPE_CHECKING:
    from temporalio.client import WorkflowExecutionDescription

POLL_S = 1.0
CHILDREN_LOOKED_AT = 50
"""Children described at most per look for a failed attempt: a request of thousands of pages stays cheap."""
err_console = Console(stderr=True, highlight=False)


@dataclass
class RequestView:
    """What an operator needs to know about a request, read once."""

    workflow_id: str
    status: str
    """Temporal's: RUNNING, COMPLETED, FAILED, CANCELED, TERMINATED, TIMED_OUT."""
    progress: Progress | None
    attempt_error: str | None = None
    """The latest failed attempt of a step that is being retried (while `last_error` is still empty)."""
    warnings: list[str] = field(default_factory=list)

    @property
    def waiting_for_operator(self) -> bool:
        return self.progress is not None and self.progress.state == State.WAITING_FOR_OPERATOR

    def headline(self) -> str:
        if self.progress is None:
            return f"{self.status}: no progress yet (no worker has picked the request up)"
        step = f", step {self.progress.step}" if self.progress.step else ""
        return f"{self.status}: {self.progress.state.value}{step}"

    def counts(self) -> str:
        p = self.progress
        if p is None:
            return ""
        parts = [f"items {p.items_done}/{p.items_total}" + (f" ({p.items_skipped} skipped)" if p.items_skipped else "")]
        parts.append(f"assets {p.assets_done}/{p.assets_total}")
        if p.units_total:
            parts.append(f"units {p.units_done}/{p.units_total}")
        if p.bytes_total:
            parts.append(f"{decimal(p.bytes_done)} of {decimal(p.bytes_total)}")
        return "  ".join(parts)

    def problems(self) -> list[str]:
        """The errors, and while it waits for an operator, the commands that answer it."""
        lines = []
        if self.progress is not None and self.progress.last_error:
            lines.append(f"last error: {self.progress.last_error}")
        if self.attempt_error and self.status == "RUNNING":
            lines.append(f"retrying after: {self.attempt_error}")
        if self.waiting_for_operator:
            quoted = shlex.quote(self.workflow_id)
            lines.append(f"waiting for an operator: rs-ondemand retry {quoted}")
            lines.append(f"                     or rs-ondemand cancel {quoted}")
            # Each waiting step (progress.waiting_steps) may be retried alone, named as `retry --step` expects.
            steps = self.progress.waiting_steps if self.progress is not None else []
            lines += [f"  one step only: rs-ondemand retry {quoted} --step {shlex.quote(step)}" for step in steps]
        lines += [f"warning: {warning}" for warning in self.warnings]
        return lines

    def lines(self) -> list[str]:
        """The readable summary `status` prints."""
        lines = [self.workflow_id, f"  {self.headline()}"]
        if counts := self.counts():
            lines.append(f"  {counts}")
        lines += [f"  {line}" for line in self.problems()]
        if isinstance(self.progress, DprProgress):
            for tried in self.progress.alternatives:
                found = f": {', '.join(tried.items)}" if tried.items else ""
                lines.append(f"  ADF {tried.adf} of {tried.unit}: {tried.product_type} {tried.outcome}{found}")
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "status": self.status,
            "progress": self.progress.model_dump(mode="json") if self.progress else None,
            "latest_attempt_error": self.attempt_error,
        }


async def read_request(client: Client, workflow_id: str) -> RequestView:
    """The request's status, progress and (while it runs) its latest failed attempt."""
    from rs_ondemand.starter._run import query_progress

    handle = client.get_workflow_handle(workflow_id)
    described = await handle.describe()
    kind = DprProgress if described.workflow_type in (DPR_PROCESSING, PROCESSING_UNIT) else Progress
    progress = await query_progress(handle, kind)
    status = described.status.name if described.status else "UNKNOWN"
    attempt = await latest_attempt_error(client, described) if status == "RUNNING" else None
    warnings = list(getattr(progress, "warnings", None) or [])
    return RequestView(workflow_id, status, progress, attempt, warnings)


async def latest_attempt_error(client: Client, described: WorkflowExecutionDescription) -> str | None:
    """The most recent failure among the pending activities of the request and of its running children (breadth
    first, at most CHILDREN_LOOKED_AT of them): `<activity> (attempt n): <message>`."""
    latest: tuple[float, str] | None = None
    queue, looked_at = [described], 0
    while queue:
        raw = queue.pop(0).raw_description
        for activity in raw.pending_activities:
            if not activity.HasField("last_failure") or not activity.last_failure.message:
                continue
            when = (
                activity.last_attempt_complete_time.ToSeconds()
                if activity.HasField("last_attempt_complete_time")
                else 0
            )
            text = f"{activity.activity_type.name} (attempt {activity.attempt - 1}): {activity.last_failure.message}"
            if latest is None or when >= latest[0]:
                latest = (when, " ".join(text.split()))
        for child in raw.pending_children:
            if looked_at >= CHILDREN_LOOKED_AT:
                break
            looked_at += 1
            try:
                queue.append(await client.get_workflow_handle(child.workflow_id, run_id=child.run_id).describe())
            except Exception:  # closed between the two reads: nothing pending there any more
                continue
    return latest[1] if latest else None


# --- `--wait`: a live view on a terminal, a line per change otherwise --------------------------------------------


def live_view(view: RequestView, elapsed_s: float, width: int) -> Group:
    """Lines that fit `width` columns: the state, a byte bar (only when there are bytes to move), the counts,
    then the problems, wrapped rather than cut (the retry command must stay whole)."""
    elapsed = time.strftime("%H:%M:%S", time.gmtime(elapsed_s))
    rows: list[Any] = [Text(f"{view.headline()}  {elapsed}", no_wrap=True, overflow="ellipsis")]
    progress = view.progress
    if progress is not None and progress.bytes_total:
        rows.append(ProgressBar(total=progress.bytes_total, completed=progress.bytes_done, width=max(10, width)))
    if counts := view.counts():
        rows.append(Text(counts, no_wrap=True, overflow="ellipsis"))
    rows += [Text(line, overflow="fold") for line in view.problems()]
    return Group(*rows)


def change_line(view: RequestView, elapsed_s: float) -> str:
    """One plain line for logs and pipes (no terminal): printed when the state, step or errors change."""
    parts = [time.strftime("%H:%M:%S", time.gmtime(elapsed_s)), view.headline()]
    if counts := view.counts():
        parts.append(counts)
    return " | ".join(parts + view.problems())


async def follow(client: Client, handle: WorkflowHandle[Any, Any]) -> Any:
    """Follow the request until it closes (live on a terminal, a line per change otherwise); its result, or its
    failure raised."""
    from rich.live import Live

    began = time.monotonic()
    if err_console.is_terminal:
        with Live(console=err_console, refresh_per_second=4, transient=False) as live:
            while True:
                view = await read_request(client, handle.id)
                live.update(live_view(view, time.monotonic() - began, err_console.width))
                if view.status != WorkflowExecutionStatus.RUNNING.name:
                    break
                await asyncio.sleep(POLL_S)
    else:
        shown: tuple[Any, ...] = ()
        while True:
            view = await read_request(client, handle.id)
            p = view.progress
            key = (view.status, p.state if p else None, p.step if p else None, view.problems())
            if key != shown:
                print(change_line(view, time.monotonic() - began), file=sys.stderr, flush=True)
                shown = key
            if view.status != WorkflowExecutionStatus.RUNNING.name:
                break
            await asyncio.sleep(POLL_S)
    return await handle.result()
