"""A Dask cluster of its own for the DPR part of `bench scale` (and the tests that need a shared cluster): a
`dask scheduler` and `dask worker` from the EOPF environment on loopback, stopped on exit, and stopped by a
detached guard if the process that started it dies without stopping it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rs_ondemand.bench import BenchError
from rs_ondemand.bench._common import Log
from rs_ondemand.stack.ports import free_port, is_listening

DASK_WORKERS = 2
DASK_START_TIMEOUT_S = 120.0


@contextmanager
def address_dask_cluster(eopf: Path, log: Log) -> Iterator[str]:
    """A `dask scheduler` and a `dask worker` (2 processes x 1 thread) from the EOPF environment, on loopback;
    stopped (process groups) on exit. Yields the scheduler's address."""
    dask = eopf.with_name("dask")
    if not dask.is_file():
        raise BenchError(f"no dask command beside {eopf} (run scripts/setup-eopf)")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    workdir = Path(tempfile.mkdtemp(prefix="rs-bench-dask-"))
    log_path = workdir / "dask.log"
    procs: list[subprocess.Popen[bytes]] = []
    guards: list[subprocess.Popen[bytes]] = []
    with log_path.open("wb") as output:

        def spawn(*args: str) -> None:
            proc = subprocess.Popen(
                [str(dask), *args], stdout=output, stderr=subprocess.STDOUT, start_new_session=True, cwd=workdir
            )
            procs.append(proc)
            guards.append(_orphan_guard(proc.pid, workdir))

        try:
            log(f"starting a Dask scheduler at {address} and {DASK_WORKERS} Dask workers")
            spawn("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
            _wait_for(lambda: is_listening(port), procs, log_path, "the Dask scheduler to listen")
            spawn(
                "worker", address, "--nworkers", str(DASK_WORKERS), "--nthreads", "1", "--host", "127.0.0.1",
                "--no-dashboard",
            )  # fmt: skip
            _wait_for(
                lambda: log_path.read_text(errors="replace").count("Registered to:") >= DASK_WORKERS,
                procs,
                log_path,
                "the Dask workers to register",
            )
            yield address
        finally:
            stop_process_groups(procs, grace_s=15)
            for guard in guards:
                guard.kill()
                guard.wait()
            shutil.rmtree(workdir, ignore_errors=True)


def stop_process_groups(procs: Sequence[subprocess.Popen[Any]], grace_s: float) -> None:
    """Stop the process group of each of `procs` (each started with `start_new_session`), the last started first:
    SIGTERM, then SIGKILL to a group whose leader has not exited within `grace_s`."""
    for proc in reversed(procs):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


GUARD = """
import os, shutil, signal, sys, time
owner, pgid, workdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def alive(kill, target):
    try:
        kill(target, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
while alive(os.kill, owner):
    time.sleep(2)
for sig in (signal.SIGTERM, signal.SIGKILL):
    if alive(os.killpg, pgid):
        os.killpg(pgid, sig)
    for _ in range(50):
        if not alive(os.killpg, pgid):
            break
        time.sleep(0.2)
shutil.rmtree(workdir, ignore_errors=True)
"""
"""The orphan guard: wait for the owner to die, then stop the process group (TERM, then KILL after 10 s)."""


def _orphan_guard(pgid: int, workdir: Path) -> subprocess.Popen[bytes]:
    """A detached watcher that stops process group `pgid` (and removes `workdir`) if this process dies without
    stopping it: a killed bench must not leave a Dask cluster behind. Killed by the orderly exit."""
    return subprocess.Popen(
        [sys.executable, "-c", GUARD, str(os.getpid()), str(pgid), str(workdir)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_for(ready: Any, procs: list[subprocess.Popen[bytes]], log_path: Path, what: str) -> None:
    deadline = time.monotonic() + DASK_START_TIMEOUT_S
    while not ready():
        if any(proc.poll() is not None for proc in procs) or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise BenchError(f"gave up waiting for {what}:\n{tail}")
        time.sleep(0.2)
