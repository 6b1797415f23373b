"""The warm EOPF runner's own guarantees and failure modes, with stand-in runs: the payload's external module is a
probe that EOPF imports first thing in a run (writing what the run sees), and that can hold the run with a child
process that follows its parent, as a LocalCluster's nanny does. EOPF then refuses the rest of the payload (it has
no `io`): the run ends with EOPF's own error. No stack needed.

- runs are forks of one runner, each with its own environment, folder, trace and process-global state;
- a cancel stops the forked run's whole process group, and the runner serves the next run;
- a runner that dies fails its runs in flight retryably (and takes them along); the next run starts a new runner;
- nothing outlives the worker: a worker killed with SIGKILL takes its runner, the runs and their children along.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from rs_ondemand.activities.eopf_process import (
    PAYLOAD_NAME,
    RunOutcome,
    group_members,
    new_run_folder,
    recorded_drivers,
    run_eopf,
)
from rs_ondemand.activities.eopf_runner import EopfRunnerLostError, WarmRunner
from rs_ondemand.bench.chaos.procs import eopf_drivers, eopf_run_processes
from tests.support.eopf_runs import running, started_runner

pytestmark = pytest.mark.timeout(240)

PROBE = """
import json, os, pathlib, shutil, subprocess, tempfile, time
import eopf
from rs_eopf_hooks.tracing import JOINED_TRACE_ID

# Process-global state a run changes: another run never sees it (each run is a fresh fork of the runner).
eopf.rs_probe_runs = getattr(eopf, "rs_probe_runs", 0) + 1
seen = {
    "pid": os.getpid(), "parent": os.getppid(), "pgid": os.getpgid(0), "runs": eopf.rs_probe_runs,
    "value": os.environ.get("PROBE_VALUE"), "leftover": os.environ.get("PROBE_LEFTOVER"),
    "cwd": os.getcwd(), "tmpdir": tempfile.gettempdir(), "trace_id": JOINED_TRACE_ID,
    "eopf_temporaries": [eopf.EOConfiguration().temporary__folder, eopf.EOConfiguration().temporary__folder_local],
}
os.environ["PROBE_LEFTOVER"] = "set by an earlier run"
hold = float(os.environ.get("PROBE_HOLD", "0"))
if hold:
    # A child that dies with its parent, as Dask's processes do.
    seen["child"] = subprocess.Popen([shutil.which("setpriv"), "--pdeathsig", "KILL", "sleep", str(hold)]).pid
pathlib.Path("probe.json").write_text(json.dumps(seen))
time.sleep(hold)
"""

TRACEPARENT = "00-{trace}-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def probe_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("probe")
    (folder / "rs_probe.py").write_text(PROBE)
    return folder


def run_folder(probe_folder: Path, run_id: str | None = None) -> Path:
    """A run folder whose payload imports the probe (after the tracing module, as our payloads do)."""
    workdir = new_run_folder(run_id or f"test-runner-{uuid.uuid4().hex[:8]}")
    modules = [{"name": "rs_eopf_hooks.tracing"}, {"name": "rs_probe", "folder": str(probe_folder)}]
    (workdir / PAYLOAD_NAME).write_text(json.dumps({"external_modules": modules}))
    return workdir


def probe(workdir: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        return dict(json.loads((workdir / "probe.json").read_text()))
    return None


async def probed(workdir: Path, run: asyncio.Task[Any]) -> dict[str, Any]:
    """What the probe of a run saw, once it wrote it."""
    async with asyncio.timeout(120):
        while (seen := probe(workdir)) is None:
            assert not run.done(), f"the run ended first: {run}"
            await asyncio.sleep(0.1)
    return seen


def start(runner: WarmRunner, workdir: Path, run_id: str | None = None, **env: str) -> asyncio.Task[RunOutcome]:
    base = {"PATH": os.environ["PATH"]}
    return asyncio.create_task(
        run_eopf(
            runner.start_run,
            run_id or workdir.name,
            workdir,
            base | env,
            heartbeat=lambda progress: None,
            heartbeat_s=0.2,
            kill_grace_s=2,
            tail_lines=20,
        )
    )


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def own_runner(eopf_executable: Path) -> AsyncIterator[WarmRunner]:
    """A runner of this module's own: the tests kill it."""
    async with started_runner(eopf_executable) as started:
        yield started


async def test_runs_are_forks_each_with_its_own_environment_folder_trace_and_state(
    own_runner: WarmRunner, probe_folder: Path
) -> None:
    traces = [uuid.uuid4().hex, uuid.uuid4().hex]
    outcomes, seen = [], []
    for value, trace in zip(("first", "second"), traces, strict=True):
        workdir = run_folder(probe_folder)
        task = start(own_runner, workdir, PROBE_VALUE=value, TRACEPARENT=TRACEPARENT.format(trace=trace))
        outcomes.append(await task)
        seen.append(probe(workdir) or {})
        assert (workdir / "output.log").is_file()
    runner_pid = own_runner.pid
    for value, trace, run in zip(("first", "second"), traces, seen, strict=True):
        assert run["parent"] == runner_pid  # both forked by the one warm runner
        assert run["pgid"] == run["pid"]  # each leads its own process group
        assert (run["value"], run["trace_id"], run["runs"], run["leftover"]) == (value, trace, 1, None)
        assert Path(run["tmpdir"]) == Path(run["cwd"]) / "tmp"
        # EOPF's temporary folders too (the runner's defaults pointed at its own TMPDIR).
        assert [Path(folder) for folder in run["eopf_temporaries"]] == [Path(run["tmpdir"])] * 2
    assert seen[0]["cwd"] != seen[1]["cwd"]
    # EOPF's own error and exit code reach the supervisor, through the run's output file.
    for outcome in outcomes:
        assert outcome.returncode == 1
        assert outcome.monitor.refusal() == 'Error: Error on payload missing value for field "io"'


async def test_a_cancel_stops_the_forked_runs_process_group(own_runner: WarmRunner, probe_folder: Path) -> None:
    workdir = run_folder(probe_folder)
    run = start(own_runner, workdir, PROBE_HOLD="120")
    seen = await probed(workdir, run)
    assert sorted(group_members(seen["pid"])) == sorted([seen["pid"], seen["child"]])
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert group_members(seen["pid"]) == []
    # The runner lives on and serves the next run.
    assert own_runner.pid == seen["parent"]
    after = run_folder(probe_folder)
    assert (await start(own_runner, after)).returncode == 1
    assert (probe(after) or {})["parent"] == seen["parent"]


async def test_a_runner_that_dies_fails_its_runs_retryably_and_is_started_again(
    own_runner: WarmRunner, probe_folder: Path
) -> None:
    workdir = run_folder(probe_folder)
    run = start(own_runner, workdir, PROBE_HOLD="120")
    seen = await probed(workdir, run)
    os.kill(seen["parent"], signal.SIGKILL)
    with pytest.raises(EopfRunnerLostError) as lost:
        await run
    assert not lost.value.non_retryable
    for _ in range(100):  # the run and its child follow the runner (parent-death signals)
        if not running(seen["pid"]) and not running(seen["child"]):
            break
        await asyncio.sleep(0.05)
    assert not running(seen["pid"]) and not running(seen["child"])
    again = run_folder(probe_folder)
    assert (await start(own_runner, again)).returncode == 1
    new = probe(again) or {}
    assert new["parent"] == own_runner.pid != seen["parent"]


WORKER = """
import asyncio, json, os, sys
from pathlib import Path
from rs_ondemand.activities.processor import warm_runner

async def main():
    runner = warm_runner(Path(sys.argv[1]))
    workdir = Path(sys.argv[2])
    env = {"PATH": os.environ["PATH"], "PROBE_HOLD": "120", "TMPDIR": str(workdir)}
    run = await runner.start_run(workdir, env)
    print(json.dumps({"runner": runner.pid, "run": run.pid}), flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


async def test_a_forked_run_is_found_by_its_run_id(own_runner: WarmRunner, probe_folder: Path) -> None:
    """A forked run shows the runner's environment in /proc, not its run id: the record of its run folder finds it
    (for a new attempt to kill it, for the chaos soak's EOPF kill and its check that no run outlives its request)."""
    prefix = f"test-found/{uuid.uuid4().hex[:8]}/"
    run_id = f"{prefix}unit-1"
    workdir = run_folder(probe_folder, run_id)
    run = start(own_runner, workdir, run_id, PROBE_HOLD="120")
    seen = await probed(workdir, run)
    assert recorded_drivers(prefix) == {seen["pid"]: run_id}
    assert eopf_drivers(prefix) == {seen["pid"]: run_id}
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert recorded_drivers(prefix) == {} and eopf_run_processes(prefix) == {}


def test_nothing_outlives_a_worker_killed_with_sigkill(eopf_executable: Path, probe_folder: Path) -> None:
    """A stand-in worker (its own warm runner, one held run): SIGKILLed, it takes the runner, the run and the run's
    child along."""
    workdir = run_folder(probe_folder)
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(eopf_executable), str(workdir)], stdout=subprocess.PIPE, text=True
    )
    assert worker.stdout is not None
    pids: dict[str, int] = {}
    try:
        pids = json.loads(worker.stdout.readline())
        for _ in range(600):
            if (seen := probe(workdir)) is not None:
                break
            time.sleep(0.1)
        assert seen is not None, "the run did not start"
        pids["child"] = seen["child"]
        assert all(running(pid) for pid in pids.values())
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        for _ in range(100):
            if not any(running(pid) for pid in pids.values()):
                break
            time.sleep(0.05)
        assert {name: pid for name, pid in pids.items() if running(pid)} == {}
    finally:
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            worker.kill()
        worker.wait(timeout=10)
        worker.stdout.close()
