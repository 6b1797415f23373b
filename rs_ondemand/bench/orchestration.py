"""`rs-ondemand bench orchestration`: what running a step as a Temporal activity costs, per activity.

One run, on a worker of the bench's own (this process, its own task queue, the real worker's configuration:
interceptors, data converter, sandbox) with a no-op activity and the `BenchOrchestration` workflow registered on
it only. Each round measures, in an order that changes from round to round:

* **sequential** — `BenchOrchestration` running `activities` no-op activities one after the other, timed from
  the start request to its result (the workflow's start and completion included);
* **parallel** — the same activities in batches of `batch` started together, each batch awaited before the next;
* **empty** — the workflow with no activity: the fixed cost of a workflow, to tell it from the per-activity cost;
* **baseline** — the same async function awaited `activities` times directly, in this process.

The headline `ms_per_activity` is the median over the rounds of the sequential wall time divided by the number
of activities (fixed cost included); `marginal_ms_per_activity` takes the empty workflow's time off first.
CPU time of this process (worker and client) and of the Temporal server (when its process is known) per activity
is reported beside: on a shared machine it is steadier than wall time. Prefect's published overhead (about
120 ms per task) is printed for comparison; it was not measured here.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.bench import BenchError
    from rs_ondemand.bench._common import (
        Log,
        StackTarget,
        bench_worker,
        embedded_stack,
        machine_now,
        request_histories,
        significant,
        timed_result,
    )
    from rs_ondemand.bench._proc import cpu_seconds
    from rs_ondemand.client import connect

BENCH_WORKFLOW = "BenchOrchestration"
NOOP_ACTIVITY = "bench_noop"
DEFAULT_ACTIVITIES = 200
DEFAULT_BATCH = 20
DEFAULT_ROUNDS = 3
PREFECT_PUBLISHED_MS_PER_TASK = 120
"""Prefect's published orchestration overhead per task (for comparison; not measured here)."""
RUN_TIMEOUT_BASE_S = 60.0
RUN_TIMEOUT_PER_ACTIVITY_S = 1.0


@dataclass(frozen=True)
class OrchestrationSpec:
    activities: int
    batch: int = 1
    """1: one activity after the other; more: batches of this many activities started together."""


@activity.defn(name=NOOP_ACTIVITY)
async def noop(index: int) -> int:
    """Does nothing but return its argument (so the workflow can check that every activity ran)."""
    return index


@workflow.defn(name=BENCH_WORKFLOW)
class OrchestrationBench:
    """Runs `spec.activities` no-op activities, sequentially or in batches; returns the sum of their results."""

    @workflow.run
    async def run(self, spec: OrchestrationSpec) -> int:
        options: dict[str, Any] = {"start_to_close_timeout": timedelta(seconds=30)}
        total = 0
        for start in range(0, spec.activities, spec.batch):
            indexes = range(start, min(start + spec.batch, spec.activities))
            if spec.batch == 1:
                total += await workflow.execute_activity(noop, start, **options)
            else:
                results = await asyncio.gather(*(workflow.execute_activity(noop, i, **options) for i in indexes))
                total += sum(results)
        return total


@dataclass
class _Side:
    wall_s: list[float]
    cpu_s: list[float]
    server_cpu_s: list[float]


def _expected(activities: int) -> int:
    return activities * (activities - 1) // 2


async def run_orchestration_bench(
    target: StackTarget,
    *,
    activities: int = DEFAULT_ACTIVITIES,
    batch: int = DEFAULT_BATCH,
    rounds: int = DEFAULT_ROUNDS,
    log: Log = lambda message: None,
) -> dict[str, Any]:
    """Measure on `target`'s Temporal server with a worker of our own; returns the report."""
    if activities < 1 or batch < 1 or rounds < 1:
        raise ValueError("activities, batch and rounds must be at least 1")
    settings = target.settings
    run_id = uuid.uuid4().hex[:8]
    queue = f"bench-orchestration-{run_id}"
    client = await connect(settings.temporal)
    sides = {name: _Side([], [], []) for name in ("sequential", "parallel", "empty", "baseline")}
    load_before = machine_now()
    timeout_s = RUN_TIMEOUT_BASE_S + activities * RUN_TIMEOUT_PER_ACTIVITY_S
    sequential_ids: list[str] = []

    async def workflow_run(spec: OrchestrationSpec, workflow_id: str) -> None:
        began = time.perf_counter()
        handle = await client.start_workflow(BENCH_WORKFLOW, spec, id=workflow_id, task_queue=queue, result_type=int)
        _, total = await timed_result(handle, began, timeout_s, "the orchestration workflow")
        if total != _expected(spec.activities):
            raise BenchError(f"{workflow_id} returned {total}, expected {_expected(spec.activities)}")

    async def baseline() -> None:
        total = 0
        for index in range(activities):
            total += await noop(index)
        if total != _expected(activities):
            raise BenchError(f"the baseline summed {total}, expected {_expected(activities)}")

    async def measure(name: str, round_: int, body: Awaitable[None]) -> None:
        cpu_before, server_before = time.process_time(), _server_cpu(target)
        began = time.perf_counter()
        await body
        side = sides[name]
        side.wall_s.append(time.perf_counter() - began)
        side.cpu_s.append(time.process_time() - cpu_before)
        server_after = _server_cpu(target)
        if server_before is not None and server_after is not None:
            side.server_cpu_s.append(server_after - server_before)
        log(f"round {round_ + 1}/{rounds} {name:10s} {side.wall_s[-1] * 1000:10.3f} ms")

    async with bench_worker(client, settings, queue, workflows=[OrchestrationBench], extra_activities=[noop]):
        log(f"warming up: a workflow of {min(activities, 10)} activities on task queue {queue}")
        await workflow_run(OrchestrationSpec(min(activities, 10)), f"bench-orchestration/{run_id}/warmup")
        for round_ in range(rounds):
            sequential_ids.append(f"bench-orchestration/{run_id}/{round_}-sequential")
            runs = {
                "sequential": (OrchestrationSpec(activities), sequential_ids[-1]),
                "parallel": (OrchestrationSpec(activities, batch), f"bench-orchestration/{run_id}/{round_}-parallel"),
                "empty": (OrchestrationSpec(0), f"bench-orchestration/{run_id}/{round_}-empty"),
            }
            # Rotate the order: no side always runs first (or right after another that warmed the caches).
            names = [*runs, "baseline"]
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                await measure(name, round_, baseline() if name == "baseline" else workflow_run(*runs[name]))
        histories = await request_histories(client, sequential_ids[0])
    return report(activities, batch, rounds, sides, histories.events, load_before)


def _server_cpu(target: StackTarget) -> float | None:
    return cpu_seconds(target.server_pid) if target.server_pid else None


def _ms_per(seconds: list[float], count: int) -> float:
    return statistics.median(seconds) * 1000 / count


def report(
    activities: int,
    batch: int,
    rounds: int,
    sides: dict[str, _Side],
    sequential_events: int,
    load_before: dict[str, Any],
) -> dict[str, Any]:
    seq, par, empty, base = (sides[name] for name in ("sequential", "parallel", "empty", "baseline"))
    ms_per_activity = _ms_per(seq.wall_s, activities)
    baseline_ms = _ms_per(base.wall_s, activities)
    marginal = statistics.median(s - e for s, e in zip(seq.wall_s, empty.wall_s, strict=True)) * 1000 / activities
    server_cpu = (
        significant(statistics.median(seq.server_cpu_s) * 1000 / activities)
        if len(seq.server_cpu_s) == len(seq.wall_s)
        else None
    )
    return {
        "activities": activities,
        "batch": batch,
        "rounds": rounds,
        "ms_per_activity": round(ms_per_activity, 3),
        "baseline_ms_per_call": significant(baseline_ms),
        "parallel_ms_per_activity": round(_ms_per(par.wall_s, activities), 3),
        "marginal_ms_per_activity": round(marginal, 3),
        "empty_workflow_ms": round(statistics.median(empty.wall_s) * 1000, 1),
        "overhead_ratio": significant(ms_per_activity / baseline_ms) if baseline_ms > 0 else None,
        "prefect_published_ms_per_task": PREFECT_PUBLISHED_MS_PER_TASK,
        "vs_prefect_published": round(ms_per_activity / PREFECT_PUBLISHED_MS_PER_TASK, 3),
        "statistic": "median over rounds; wall time from the start request to the result, divided by activities",
        "cpu_ms_per_activity": {
            "bench_process": significant(statistics.median(seq.cpu_s) * 1000 / activities),
            "temporal_server": server_cpu,
        },
        "history_events_sequential": sequential_events,
        "runs_ms": {
            "sequential": [round(s * 1000, 1) for s in seq.wall_s],
            "parallel": [round(s * 1000, 1) for s in par.wall_s],
            "empty": [round(s * 1000, 1) for s in empty.wall_s],
            "baseline": [significant(s * 1000) for s in base.wall_s],
        },
        "machine": load_before,
        "load_avg_after": machine_now().get("load_avg"),
    }


def bench_orchestration(
    *,
    activities: int = DEFAULT_ACTIVITIES,
    batch: int = DEFAULT_BATCH,
    rounds: int = DEFAULT_ROUNDS,
    state_dir: Path | None = None,
    log: Log = lambda message: None,
) -> dict[str, Any]:
    """Bring the embedded stack up (a running one is reused) and run the benchmark on it."""
    target = embedded_stack(state_dir, log)
    return asyncio.run(run_orchestration_bench(target, activities=activities, batch=batch, rounds=rounds, log=log))
