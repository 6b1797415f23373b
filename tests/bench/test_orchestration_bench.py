"""`rs-ondemand bench orchestration`: a scaled-down run on the test stack (shape and sanity, no timing threshold)
and the command's options and output."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from temporalio.client import Client
from typer.testing import CliRunner

from rs_ondemand.bench._common import StackTarget
from rs_ondemand.bench.orchestration import BENCH_WORKFLOW, run_orchestration_bench
from rs_ondemand.config import Settings
from rs_ondemand.stack import StackInfo
from rs_ondemand.starter.bench_cmd import stdout_to_stderr
from rs_ondemand.starter.cli import app

KEYS = {
    "activities",
    "batch",
    "rounds",
    "ms_per_activity",
    "baseline_ms_per_call",
    "parallel_ms_per_activity",
    "marginal_ms_per_activity",
    "empty_workflow_ms",
    "prefect_published_ms_per_task",
    "cpu_ms_per_activity",
    "history_events_sequential",
    "runs_ms",
    "machine",
    "load_avg_after",
}


async def test_orchestration_bench_on_the_test_stack(
    settings: Settings, stack: StackInfo, stack_env: dict[str, str], client: Client
) -> None:
    """20 no-op activities, in batches of 5, two rounds: every number is there and positive."""
    temporal = stack.services["temporal"]
    target = StackTarget(settings=settings, server_pid=temporal.pid)
    result = await run_orchestration_bench(target, activities=20, batch=5, rounds=2)

    assert set(result) >= KEYS
    assert (result["activities"], result["batch"], result["rounds"]) == (20, 5, 2)
    for key in ("ms_per_activity", "baseline_ms_per_call", "parallel_ms_per_activity", "empty_workflow_ms"):
        assert result[key] > 0, key
    assert result["prefect_published_ms_per_task"] == 120
    assert result["cpu_ms_per_activity"]["bench_process"] > 0
    if temporal.pid is not None:
        assert result["cpu_ms_per_activity"]["temporal_server"] > 0
    # Each sequential activity costs its workflow at least its scheduled/started/completed events.
    assert result["history_events_sequential"] >= 3 * 20
    for side in ("sequential", "parallel", "empty", "baseline"):
        assert len(result["runs_ms"][side]) == 2 and all(ms > 0 for ms in result["runs_ms"][side]), side
    machine = result["machine"]
    assert machine["cpus"] >= 1 and len(machine["load_avg"]) == 3 and len(result["load_avg_after"]) == 3
    json.dumps(result)  # serialisable as the command prints it

    # The bench's workflow ran on the bench's own queue only (the runs are there, closed).
    runs = [run async for run in client.list_workflows(f"WorkflowType = '{BENCH_WORKFLOW}'")]
    assert runs and all(run.task_queue.startswith("bench-orchestration-") for run in runs)


def test_orchestration_command_prints_one_json_object(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    fake = {"ms_per_activity": 9.5, "baseline_ms_per_call": 0.0002}

    def fake_bench(**kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs)
        kwargs["log"]("progress goes to stderr")
        return fake

    monkeypatch.setattr("rs_ondemand.bench.orchestration.bench_orchestration", fake_bench)
    args = ["bench", "orchestration", "--json", "--activities", "20", "--batch", "4", "--rounds", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == fake
    assert (seen["activities"], seen["batch"], seen["rounds"]) == (20, 4, 1)


def test_orchestration_command_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr("rs_ondemand.bench.orchestration.bench_orchestration", lambda **kw: seen.update(kw) or {})
    result = CliRunner().invoke(app, ["bench", "orchestration", "--json"])
    assert result.exit_code == 0, result.output
    assert (seen["activities"], seen["batch"], seen["rounds"]) == (200, 20, 3)


def test_what_the_temporal_core_writes_to_stdout_goes_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    """The SDK's Rust core logs its warnings on file descriptor 1: during a bench they must not land in the JSON."""
    with stdout_to_stderr():
        os.write(1, b"WARN temporalio_sdk_core: Query not found\n")
    print(json.dumps({"ms_per_activity": 1.0}), flush=True)
    out, err = capfd.readouterr()
    assert json.loads(out) == {"ms_per_activity": 1.0}
    assert "Query not found" in err
