"""What the orchestration and scale benches share: the stack they run on, a worker of their own, the
histories of a request, percentiles, cleanup, and a description of the machine with its load."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowHistory

from rs_ondemand.bench import BenchError
from rs_ondemand.bench._proc import machine
from rs_ondemand.bench._s3 import delete_prefix
from rs_ondemand.config import Settings
from rs_ondemand.worker import activities, running_workers

Log = Callable[[str], None]

TEMPORAL_LIMITS = {
    "history_events_warn": 10_240,
    "history_events_max": 51_200,
    "history_bytes_warn": 10 * 1024 * 1024,
    "history_bytes_max": 50 * 1024 * 1024,
    "payload_bytes_warn": 512 * 1024,
    "payload_bytes_max": 2 * 1024 * 1024,
}
"""The Temporal server's default per-workflow limits (a history past the max is terminated)."""
NO_OPERATOR: dict[str, Any] = {"operator_wait_limit_s": 1}
"""`options` of the bench's requests: nobody is there to retry a failed step, so a request fails at once (and
cleans up) instead of waiting a week for an operator."""


@dataclass(frozen=True)
class StackTarget:
    """Where a bench runs: the stack's settings, its simulator, and the Temporal server's process if known."""

    settings: Settings
    simulator_url: str | None = None
    server_pid: int | None = None
    """The Temporal server (its CPU time per activity is reported when known)."""


def embedded_stack(state_dir: Path | None, log: Log) -> StackTarget:
    """Bring the embedded stack up (a running one is reused) and describe it; the benches run their own worker."""
    from rs_ondemand.stack import Stack, default_state_dir

    info = Stack(state_dir or default_state_dir(), notify=log).up()
    temporal = info.services.get("temporal")
    return StackTarget(
        settings=Settings.load(info.env_file),
        simulator_url=info.env.get("SIMULATOR_URL"),
        server_pid=temporal.pid if temporal else None,
    )


def machine_now() -> dict[str, Any]:
    """CPUs, memory, Python, and the load averages (1, 5, 15 min) at this moment: the machine is shared."""
    info = machine()
    with contextlib.suppress(OSError):
        info["load_avg"] = [round(value, 2) for value in os.getloadavg()]
    return info


@asynccontextmanager
async def bench_worker(
    client: Client,
    settings: Settings,
    task_queue: str,
    *,
    workflows: Sequence[type] = (),
    extra_activities: Sequence[Callable[..., Any]] = (),
) -> AsyncIterator[None]:
    """The real worker (every workflow and activity, the stations' download workers) on a queue of the bench,
    plus the bench's own workflows and activities, in this process."""
    async with (
        activities(settings) as fns,
        running_workers(
            client, settings, [*fns, *extra_activities], task_queue=task_queue, extra_workflows=[*workflows]
        ),
    ):
        yield


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (`q` in 0..100): always one of the measured values."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def significant(value: float, digits: int = 3) -> float:
    """`value` rounded to `digits` significant digits (tiny timings must not round to 0)."""
    return float(f"{value:.{digits}g}")


async def timed_result[T](handle: WorkflowHandle[Any, T], began: float, timeout_s: float, what: str) -> tuple[float, T]:
    """A workflow's result and the seconds since `began`; terminated and a BenchError after `timeout_s`."""
    try:
        async with asyncio.timeout(timeout_s):
            result = await handle.result()
    except TimeoutError as err:
        with contextlib.suppress(Exception):
            await handle.terminate("benchmark timed out")
        raise BenchError(f"{what} ({handle.id}) did not finish in {timeout_s:.0f} s") from err
    return time.perf_counter() - began, result


@dataclass
class HistoryStats:
    """The histories of one request: its workflow, its children, theirs, and runs continued as new."""

    workflows: int = 0
    events: int = 0
    """Events of every history together."""
    bytes: int = 0
    """Serialized size of every event together."""
    largest_history_events: int = 0
    largest_history_bytes: int = 0
    largest_history_type: str = ""
    """Workflow type of the history with the most events."""
    largest_event_bytes: int = 0
    largest_event_type: str = ""

    def add(self, workflow_type: str, events: Sequence[Any]) -> None:
        sizes = [event.ByteSize() for event in events]
        self.workflows += 1
        self.events += len(events)
        self.bytes += sum(sizes)
        if len(events) > self.largest_history_events:
            self.largest_history_events, self.largest_history_type = len(events), workflow_type
        self.largest_history_bytes = max(self.largest_history_bytes, sum(sizes))
        for event, size in zip(events, sizes, strict=True):
            if size > self.largest_event_bytes:
                self.largest_event_bytes, self.largest_event_type = size, EventType.Name(event.event_type)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def request_histories(
    client: Client,
    workflow_id: str,
    run_id: str | None = None,
    visit: Callable[[WorkflowHistory], None] | None = None,
) -> HistoryStats:
    """Fetch the history of a request's workflow and, following the child-started and continued-as-new events,
    every history below it; count their events and bytes (and give each history to `visit`)."""
    stats = HistoryStats()
    slots = asyncio.Semaphore(8)

    async def fetch(execution: tuple[str, str | None]) -> list[Any]:
        async with slots:
            history = await client.get_workflow_handle(execution[0], run_id=execution[1]).fetch_history()
        if visit is not None:
            visit(history)
        return list(history.events)

    todo: list[tuple[str, str | None]] = [(workflow_id, run_id)]
    while todo:
        batch, todo = todo, []
        for (wid, _), events in zip(batch, await asyncio.gather(*map(fetch, batch)), strict=True):
            first = events[0].workflow_execution_started_event_attributes if events else None
            stats.add(first.workflow_type.name if first else "?", events)
            for event in events:
                if event.HasField("child_workflow_execution_started_event_attributes"):
                    child = event.child_workflow_execution_started_event_attributes.workflow_execution
                    todo.append((child.workflow_id, child.run_id))
                elif event.HasField("workflow_execution_continued_as_new_event_attributes"):
                    todo.append((wid, event.workflow_execution_continued_as_new_event_attributes.new_execution_run_id))
    return stats


async def delete_collection(http: httpx.AsyncClient, settings: Settings, collection: str) -> None:
    """Remove a catalog collection the bench created (its items go with it); a missing one is fine."""
    url = f"{settings.catalog.url.rstrip('/')}/collections/{quote(collection, safe='')}"
    with contextlib.suppress(httpx.HTTPError):
        await http.delete(url, timeout=300)


async def delete_staged(s3: Any, settings: Settings, owner: str, collection: str) -> None:
    """Remove what was staged or produced into `collection`: its objects and transfer checkpoints."""
    bucket = settings.s3.rs_bucket
    await delete_prefix(s3, bucket, f"{owner}/{collection}/")
    await delete_prefix(s3, settings.s3.rs_work_bucket, f"transfers/{bucket}/{owner}/{collection}/")


async def gather_all[T](awaitables: Sequence[Awaitable[T]]) -> list[T]:
    """Every result, or the first error after the others were cancelled (no orphan tasks)."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
