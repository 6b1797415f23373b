"""Processes the chaos soak starts, kills and looks for (Linux /proc): worker processes, process sessions, the
processes of EOPF runs. The crash tests (tests/reliability) use the same helpers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from rs_ondemand.activities.eopf_process import RUN_MARKER, recorded_drivers
from rs_ondemand.stack.procs import stat_fields
from rs_ondemand.stack.services import WORKER_READY_MARKER

WORKER_START_TIMEOUT_S = 240.0
"""A worker's imports alone took a minute on the shared 2-core machine at a load of 28."""


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes of a session: a process started with `start_new_session` and everything it
    started (Dask nannies and workers included), whatever process groups they made."""
    members = []
    for pid in _pids():
        fields = stat_fields(pid)
        if fields is not None and int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            members.append(pid)
    return sorted(members)


def kill_sessions(sids: Sequence[int]) -> None:
    """SIGKILL every process group of these sessions (processes our own processes started)."""
    for sid in sids:
        for pid in session_members(sid):
            if (fields := stat_fields(pid)) is not None:
                try:
                    os.killpg(int(fields[2]), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    continue


def eopf_run_processes(run_prefix: str) -> dict[int, str]:
    """Live processes of EOPF runs whose id starts with `run_prefix`, as `{pid: run id}`: those whose environment
    carries the run id (a driver started as a process, Dask processes), and the drivers their run folders record
    (a run forked by the warm runner shows the runner's environment in /proc)."""
    wanted = f"{RUN_MARKER}={run_prefix}".encode()
    found = {}
    for pid in _pids():
        if pid == os.getpid():
            continue
        try:
            variables = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        fields = stat_fields(pid)
        for variable in variables:
            if variable.startswith(wanted) and fields is not None and fields[0] not in ("Z", "X"):
                found[pid] = variable.decode(errors="replace").split("=", 1)[1]
    return found | recorded_drivers(run_prefix)


def eopf_drivers(run_prefix: str) -> dict[int, str]:
    """The EOPF driver processes (each leads its own session) among `eopf_run_processes(run_prefix)`."""
    return {
        pid: run
        for pid, run in eopf_run_processes(run_prefix).items()
        if (fields := stat_fields(pid)) is not None and int(fields[3]) == pid
    }


def _spawn(argv: Sequence[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def start_worker(
    argv: Sequence[str], env: Mapping[str, str], log: Path, timeout_s: float = WORKER_START_TIMEOUT_S
) -> subprocess.Popen[bytes]:
    """A worker process (`argv`, in a session of its own, output appended to `log`), once it logs that it
    started; a restarted worker appends to the same log, so only what it wrote counts.

    Raises:
        RuntimeError: the worker exited or did not start within `timeout_s`, with the end of its log.
    """
    offset = await asyncio.to_thread(lambda: log.stat().st_size if log.exists() else 0)
    process = await asyncio.to_thread(_spawn, argv, env, log)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline and process.poll() is None:
        text = (await asyncio.to_thread(log.read_bytes))[offset:].decode(errors="replace")
        if WORKER_READY_MARKER in text:
            return process
        await asyncio.sleep(0.1)
    tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-3000:]
    await asyncio.to_thread(kill_worker, process)
    raise RuntimeError(f"worker {' '.join(argv)} did not start:\n{tail}")


def kill_worker(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker's process group (what `kill -9` of a crashed host looks like to Temporal)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
