"""An EOPF run as a supervised subprocess: its own process group, a parent-death signal, a run folder, a scrubbed
environment, and a monitor of its output and progress events.

`eopf trigger local payload.yaml` runs in the EOPF venv (Python 3.13 and 1.3 GB of science stack stay out of the
worker), on the Dask cluster the payload names. The EOPF process only drives; the work happens on the cluster. A
cancellation kills the whole process group (SIGTERM, a grace period, then SIGKILL), so no driver, LocalCluster
nanny or worker outlives the activity; a worker killed with SIGKILL takes its run along (parent-death signal), and
the next attempt removes whatever an earlier one left (processes marked with the run id, run folders of dead
workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rs_ondemand.models.processor_run import ProcessorProgress, WrittenProduct
from rs_ondemand.names import safe_segment

log = logging.getLogger(__name__)

PAYLOAD_NAME = "payload.yaml"
PROGRESS_NAME = "progress.jsonl"
REPORT_MARKER = '"message":"Workflow execution report"'
"""EOPF logs its execution report as one JSON object on one line (`WorkflowExecutionReport.format`)."""
PROGRESS_LINE = re.compile(r"Workflow progress: (\d+)%")

PAYLOAD_REFUSALS = re.compile(
    "|".join(
        (
            # eopf.triggering.runner: the payload's external modules (our units are among them)
            r"Module \S+ not found",
            r"Import folder \S+ does not exist",
            # eopf.triggering.parsers: the workflow (importing units, their mandatory inputs and ADFs), io, hooks
            "Error on payload",
            "Error while importing module",
            r"Class \S+ not found in module",
            "Processor version mismatch",
            "Missing input for unit",
            "Missing input adf for unit",
            "Invalid workflow active expression",
            r"Duplicated id\(s\) in io\.",
            "engine param is mandatory",
            "is not able to write",
            "Invalid writer configuration for output",
            "Error while building context manager",
            "Error while importing workflow callback",
            # eopf.triggering.workflow_plan / workflow_validation: the chain's graph and its io references
            "Workflow must contain at least one active processing unit",
            "Twice the same unit identifier",
            "Workflow has cyclic dependencies",
            "Missing mandatory input for",
            "Missing mandatory adf for",
            "but is not available in I/O configuration",
            "but is not available in I/O adf configuration",
            "Missing EOConfiguration params to run the TaskTable",
            # eopf.common.env_utils: a ${VAR} of the payload that the EOPF process's environment does not have
            "Unresolved env vars",
        )
    )
)
"""EOPF's messages for a payload it refuses before running any unit (EOPF 3.0's own wording, from its triggering
code): the same payload is refused again, whatever an operator waits for. Failures on data (an input that cannot
be opened, a unit's own error) and on the cluster are not in the list: they may pass on a retry."""

RUN_MARKER = "RS_EOPF_RUN_ID"
"""In the environment of an EOPF run and of every process it starts (Dask's too): which run they belong to."""
RUN_FOLDER_PREFIX = "rs-eopf-"
OWNER_FILE = "worker"
"""In a run folder: which worker process made it (pid and start time, so a reused pid is not taken for it)."""

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


class RunMonitor:
    """Follows one EOPF run: its output (tail and execution report) and its progress events."""

    def __init__(self, progress_path: Path, tail_lines: int) -> None:
        self.progress_path = progress_path
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self.report: dict[str, Any] | None = None
        self.progress = ProcessorProgress()
        self.products: dict[str, WrittenProduct] = {}
        self._offset = 0
        self._started = time.monotonic()
        self._units_done: set[str] = set()
        self._events: set[str] = set()

    async def pump(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            self.tail.append(text)
            if progress := PROGRESS_LINE.search(text):
                self.progress.percent = int(progress.group(1))
            if REPORT_MARKER in text:
                with contextlib.suppress(ValueError):
                    self.report = json.loads(text[text.index("{") :])

    def poll(self) -> ProcessorProgress:
        """Read the events appended since the last poll; returns the progress so far."""
        with contextlib.suppress(FileNotFoundError), self.progress_path.open("rb") as events:
            events.seek(self._offset)
            chunk = events.read()
            # Only whole lines: the callback writes one line per event, the last may still be arriving.
            whole = chunk[: chunk.rfind(b"\n") + 1]
            self._offset += len(whole)
            for line in whole.splitlines():
                with contextlib.suppress(ValueError):
                    self._apply(json.loads(line))
        self.progress.elapsed_s = round(time.monotonic() - self._started, 1)
        return self.progress

    def _apply(self, event: dict[str, Any]) -> None:
        kind = str(event.get("event", ""))
        self._events.add(kind)
        self.progress.event = kind
        self.progress.units_total = int(event.get("units_total") or self.progress.units_total)
        if event.get("unit"):
            self.progress.unit = str(event["unit"])
        if event.get("trace_id"):
            self.progress.trace_id = str(event["trace_id"])
        if kind == "after_unit" and event.get("unit"):
            self._units_done.add(str(event["unit"]))
            self.progress.units_done = len(self._units_done)
        if kind in ("after_output_write_submit", "after_output_write_flush") and event.get("product_path"):
            output_id = str(event.get("output_id"))
            self.products[str(event["product_path"])] = WrittenProduct(
                output_id=output_id, path=str(event["product_path"]), unit=event.get("unit")
            )
            self.progress.outputs_written = len(self.products)

    def written_products(self) -> list[WrittenProduct]:
        """From EOPF's report when it printed one, else from the callback events."""
        if self.report and self.report.get("written_products"):
            return [
                WrittenProduct(output_id=str(p.get("product_id")), path=str(p["path"]), unit=p.get("unit"))
                for p in self.report["written_products"]
            ]
        return list(self.products.values())

    def refusal(self) -> str | None:
        """EOPF's line refusing the payload, when it refused it before any unit started; else None."""
        if self.progress.units_done or any(event == "before_unit" for event in self._events):
            return None
        # The last such line: EOPF logs the error, then its command line prints it alone ("Error: ...").
        lines = reversed(self.tail)
        return next((line for line in lines if PAYLOAD_REFUSALS.search(line)), None)

    def failure_reason(self) -> str:
        exception = (self.report or {}).get("exception") or {}
        if exception:
            return f"{exception.get('type')}: {exception.get('message')}"
        errors = [line for line in self.tail if "Error" in line or "ERROR" in line]
        return errors[-1] if errors else "no error message (see the output below)"


@dataclass
class RunOutcome:
    """How an EOPF run ended."""

    returncode: int
    monitor: RunMonitor
    duration_s: float


def kill_earlier_attempts(run_id: str) -> list[int]:
    """SIGKILL the processes of this machine that belong to `run_id` (by their environment), with their process
    groups; returns their pids. A worker killed with SIGKILL cannot stop its EOPF run: the next attempt does."""
    marker = f"{RUN_MARKER}={run_id}".encode()
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            pid = int(entry.name)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except OSError:  # gone meanwhile, or not ours to read
            continue
    if killed:
        log.warning("killed %d processes left by an earlier attempt of EOPF run %s: %s", len(killed), run_id, killed)
    return killed


def _started_at(pid: int) -> str | None:
    """A process's start time (clock ticks since boot, /proc/PID/stat field 22); None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


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


async def _stop_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the process group, give it `grace` seconds, then SIGKILL whatever is left of the group."""
    pgid = proc.pid  # start_new_session: the EOPF process leads its own group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), grace)
    _kill_leftovers(pgid)
    await proc.wait()


def _kill_leftovers(pgid: int) -> None:
    # Dask nannies and workers are in the group too and may outlive the leader: nothing of it may stay.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def run_eopf(
    executable: Path,
    run_id: str,
    workdir: Path,
    env: dict[str, str],
    *,
    heartbeat: Callable[[ProcessorProgress], None],
    heartbeat_s: float,
    kill_grace_s: float,
    tail_lines: int,
) -> RunOutcome:
    """Run `eopf trigger local` on `workdir/payload.yaml`, calling `heartbeat` with its progress every
    `heartbeat_s`; a cancellation (or any interruption) stops its whole process group before it propagates."""
    monitor = RunMonitor(workdir / PROGRESS_NAME, tail_lines)
    # EOPF's temporary folder and Dask's scratch space follow TMPDIR: inside the run's folder, they go with it,
    # even when the run is killed before EOPF could clean up.
    scratch = workdir / "tmp"
    scratch.mkdir(exist_ok=True)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *parent_death_wrapper(),
        str(executable),
        "trigger",
        "local",
        str(workdir / PAYLOAD_NAME),
        "--working-dir",
        str(workdir),
        cwd=workdir,
        env=env | {"TMPDIR": str(scratch), RUN_MARKER: run_id, "PYTHONUNBUFFERED": "1"},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        # Its own process group: a cancellation kills the driver and every Dask process it started.
        start_new_session=True,
    )
    log.info("EOPF run %s started (pid %d) in %s", run_id, proc.pid, workdir)
    monitor.progress.pid = proc.pid
    assert proc.stdout is not None
    pump = asyncio.create_task(monitor.pump(proc.stdout))
    try:
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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pump, 5)
        monitor.poll()
    heartbeat(monitor.progress)  # the final state, teardown included
    return RunOutcome(int(proc.returncode or 0), monitor, round(time.monotonic() - started, 2))
