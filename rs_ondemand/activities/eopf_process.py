"""An EOPF run as a supervised process: its own process group, a parent-death signal, a run folder, a scrubbed
environment, and a monitor of its output and progress events.

`eopf trigger local payload.yaml` runs in the EOPF venv (Python 3.13 and 1.3 GB of science stack stay out of the
worker), on the Dask cluster the payload names. The EOPF process only drives; the work happens on the cluster. It
is either a fork of the worker's warm runner (`eopf_runner`, the default: no start-up cost) or a new `eopf`
process (cold: seconds of imports); either way it leads its own process group and dies with the worker. A
cancellation kills the whole process group (SIGTERM, a grace period, then SIGKILL), so no driver, LocalCluster
nanny or worker outlives the activity; a worker killed with SIGKILL takes its run along (parent-death signal), and
the next attempt removes whatever an earlier one left (processes marked with the run id or recorded in its run
folder, run folders of dead workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rs_ondemand.activities.eopf_monitor import OUTPUT_NAME, RunMonitor
from rs_ondemand.models.processor_run import ProcessorProgress
from rs_ondemand.names import safe_segment

log = logging.getLogger(__name__)

PAYLOAD_NAME = "payload.yaml"
GROUP_EXIT_TIMEOUT_S = 30.0
RUN_MARKER = "RS_EOPF_RUN_ID"
"""In the environment of an EOPF run and of every process it starts (Dask's too): which run they belong to."""
RUN_FOLDER_PREFIX = "rs-eopf-"
OWNER_FILE = "worker"
"""In a run folder: which worker process made it (pid and start time, so a reused pid is not taken for it)."""
DRIVER_FILE = "eopf"
"""In a run folder: its EOPF process (pid, start time and run id). A forked run has the runner's environment
and command line in /proc, so the run marker of its environment is not seen there: this file is."""

INHERITED_VARIABLES = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "SSL_CERT_FILE"})
INHERITED_PREFIXES = ("LC_", "OTEL_", "EOPF_", "DASK_", "REQUESTS_CA_", "CURL_CA_")
"""Environment of the worker passed to EOPF: locale, temp dir, CA bundles, telemetry, EOPF and Dask settings.
The worker's other credentials (stations, catalog) stay out of a process that runs third-party processor code."""


def inherited_environment() -> dict[str, str]:
    """The part of the worker's environment an EOPF run gets as it is."""
    return {
        key: value
        for key, value in os.environ.items()
        if key in INHERITED_VARIABLES or key.startswith(INHERITED_PREFIXES)
    }


def traceparent() -> str | None:
    """The current span as a W3C `traceparent`, for the EOPF process's environment."""
    try:
        from opentelemetry.propagate import inject
    except ImportError:  # pragma: no cover - temporalio[opentelemetry] brings it
        return None
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


class RunProcess(Protocol):
    """A started EOPF run: the leader of its own process group."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...


Starter = Callable[[Path, dict[str, str]], Awaitable[RunProcess]]
"""Starts `eopf trigger local` on `<run folder>/payload.yaml` with an environment, its output (stdout and
stderr) appended to `<run folder>/output.log`."""


@dataclass
class RunOutcome:
    """How an EOPF run ended."""

    returncode: int
    monitor: RunMonitor
    duration_s: float


def kill_earlier_attempts(run_id: str) -> list[int]:
    """SIGKILL the processes of this machine that belong to `run_id` (by their environment, or recorded in one of
    its run folders), with their process groups; returns their pids. A worker killed with SIGKILL cannot stop its
    EOPF run: the next attempt does."""
    marker = f"{RUN_MARKER}={run_id}".encode()
    found = set(_recorded_drivers(run_id))
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to read
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.add(int(entry.name))
    killed = []
    for pid in sorted(found):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    if killed:
        log.warning("killed %d processes left by an earlier attempt of EOPF run %s: %s", len(killed), run_id, killed)
    return killed


def _recorded_drivers(run_id: str) -> list[int]:
    """The EOPF processes of `run_id` its run folders name, still running (same pid, same start time)."""
    return [pid for pid, run in recorded_drivers(run_id).items() if run == run_id]


def recorded_drivers(run_prefix: str) -> dict[int, str]:
    """The EOPF processes of the runs whose id starts with `run_prefix`, as their run folders record them, those
    still running (same pid and start time, not a zombie), as `{pid: run id}`: the way to find a forked run."""
    found = {}
    for folder in Path(tempfile.gettempdir()).glob(f"{RUN_FOLDER_PREFIX}{safe_segment(run_prefix)[:32]}*"):
        with contextlib.suppress(OSError, ValueError):
            pid, started, recorded = (folder / DRIVER_FILE).read_text().split(" ", 2)
            state, since = _state_and_start(int(pid)) or ("", None)
            alive = since == started and state not in ("Z", "X")
            if recorded.startswith(run_prefix) and int(pid) != os.getpid() and alive:
                found[int(pid)] = recorded
    return found


def record_driver(workdir: Path, run_id: str, pid: int) -> None:
    """Write `pid` as the EOPF process of `run_id` in its run folder (see `DRIVER_FILE`)."""
    (workdir / DRIVER_FILE).write_text(f"{pid} {_started_at(pid)} {run_id}")


def _started_at(pid: int) -> str | None:
    """A process's start time (clock ticks since boot, /proc/PID/stat field 22); None when it is gone."""
    found = _state_and_start(pid)
    return found[1] if found else None


def _state_and_start(pid: int) -> tuple[str, str] | None:
    """A process's state (R, S, Z...) and start time, from one read of /proc/PID/stat; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], fields[19]


def new_run_folder(run_id: str) -> Path:
    """A fresh folder for one attempt of `run_id`, marked as this worker process's."""
    # The run id in the name tells an operator which run a folder belongs to. Kept short: EOPF's and Dask's
    # temporary files go below it (TMPDIR), and Unix socket paths there are limited to 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix=f"{RUN_FOLDER_PREFIX}{safe_segment(run_id)[:32]}-"))
    (folder / OWNER_FILE).write_text(f"{os.getpid()} {_started_at(os.getpid())}")
    return folder


def remove_abandoned_run_folders(grace_s: float = 300) -> list[Path]:
    """Remove the run folders whose worker process is gone (killed before its `finally` could): returns them.
    A folder without an owner yet is left alone for `grace_s` (it is being made)."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{RUN_FOLDER_PREFIX}*"):
        try:
            pid, started = (folder / OWNER_FILE).read_text().split()
            abandoned = _started_at(int(pid)) != started
        except FileNotFoundError:
            abandoned = time.time() - folder.stat().st_mtime > grace_s
        except (OSError, ValueError):  # not a run folder of ours, or gone meanwhile
            continue
        if abandoned:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        log.warning("removed %d run folders left by dead workers: %s", len(removed), [f.name for f in removed])
    return removed


def parent_death_wrapper() -> list[str]:
    """A command prefix that makes the EOPF process die with the worker (SIGKILL when its parent dies).

    A worker killed with SIGKILL cannot stop its EOPF run; the run then outlives its attempt, writes outputs the
    request may have given up, and competes with the retried attempt. EOPF's Dask processes watch their parent
    (distributed's AsyncProcess), so the whole run goes with the driver.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


async def _stop_group(proc: RunProcess, grace: float) -> None:
    """SIGTERM the process group, give it `grace` seconds, then SIGKILL whatever is left of the group."""
    pgid = proc.pid  # a session of its own: the EOPF process leads its own group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_ended(proc), grace)
    _kill_leftovers(pgid)
    await _ended(proc)
    # SIGKILLed processes take a moment to exit (more on a busy machine): the cancel completes once they have.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(GROUP_EXIT_TIMEOUT_S):
            while group_members(pgid):  # noqa: ASYNC110 - /proc has nothing to wait on
                await asyncio.sleep(0.1)
            return
    log.warning("processes of EOPF's process group %d still exit after %g s", pgid, GROUP_EXIT_TIMEOUT_S)


async def _ended(proc: RunProcess) -> None:
    # How the leader ended no longer matters once it is stopped (a lost runner raises: it took its runs along).
    with contextlib.suppress(Exception):
        await proc.wait()


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                    members.append(int(entry.name))
    return members


def _kill_leftovers(pgid: int) -> None:
    # Dask nannies and workers are in the group too and may outlive the leader: nothing of it may stay.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def cold_starter(executable: Path) -> Starter:
    """A `Starter` that runs the `eopf` command of the EOPF environment as a new process (imports included)."""

    async def start(workdir: Path, env: dict[str, str]) -> RunProcess:
        with (workdir / OUTPUT_NAME).open("ab") as output:
            return await asyncio.create_subprocess_exec(
                *parent_death_wrapper(),
                str(executable),
                "trigger",
                "local",
                str(workdir / PAYLOAD_NAME),
                "--working-dir",
                str(workdir),
                cwd=workdir,
                env=env | {"PYTHONUNBUFFERED": "1"},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                # Its own process group: a cancellation kills the driver and every Dask process it started.
                start_new_session=True,
            )

    return start


async def run_eopf(
    start: Starter,
    run_id: str,
    workdir: Path,
    env: dict[str, str],
    *,
    heartbeat: Callable[[ProcessorProgress], None],
    heartbeat_s: float,
    kill_grace_s: float,
    tail_lines: int,
) -> RunOutcome:
    """Run `eopf trigger local` on `workdir/payload.yaml` (started by `start`), calling `heartbeat` with its
    progress every `heartbeat_s`; a cancellation (or any interruption) stops its whole process group before it
    propagates."""
    monitor = RunMonitor(workdir, tail_lines)
    # EOPF's temporary folder and Dask's scratch space follow TMPDIR: inside the run's folder, they go with it,
    # even when the run is killed before EOPF could clean up.
    scratch = workdir / "tmp"
    scratch.mkdir(exist_ok=True)
    started = time.monotonic()
    proc = await start(workdir, env | {"TMPDIR": str(scratch), RUN_MARKER: run_id})
    try:
        record_driver(workdir, run_id, proc.pid)
        log.info("EOPF run %s started (pid %d) in %s", run_id, proc.pid, workdir)
        monitor.progress.pid = proc.pid
        while True:
            heartbeat(monitor.poll())
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), heartbeat_s)
                break
            except TimeoutError:
                continue
    except BaseException:
        # Cancellation (or a worker shutdown): nothing of the run may outlive the activity.
        log.warning("EOPF run %s interrupted: stopping its process group %d", run_id, proc.pid)
        await asyncio.shield(_stop_group(proc, kill_grace_s))
        raise
    finally:
        _kill_leftovers(proc.pid)
        monitor.poll(final=True)
    heartbeat(monitor.progress)  # the final state, teardown included
    return RunOutcome(int(proc.returncode or 0), monitor, round(time.monotonic() - started, 2))
