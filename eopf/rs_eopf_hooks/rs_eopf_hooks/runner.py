"""`python -m rs_eopf_hooks.runner`: a warm EOPF runner, which forks one process per EOPF run.

Starting `eopf trigger local` costs seconds of CPU before any work, almost all of it importing EOPF's science
stack (xarray, pandas, s3fs, dask). The runner imports it once, then waits for runs; each run is a `fork()` of the
runner that runs exactly what `eopf trigger local <payload> --working-dir <folder>` runs, and exits with its exit
code. The runner itself never runs anything, so every run starts from the same freshly-imported state, and what a
run changes in its process (EOPF's configuration, logging, working directory, environment, Dask clients) ends with
it.

A forked run:
- leads a session of its own (`setsid`): its supervisor stops the run and every process it started (a
  LocalCluster's nanny and workers) by signalling that process group;
- gets SIGKILL when the runner dies (`PR_SET_PDEATHSIG`), as the runner does when the worker that started it dies:
  a run never outlives its worker;
- gets the environment the request gives (its `${VAR}` values, `TMPDIR`, `TRACEPARENT`, the run marker) and writes
  its output (stdout and stderr) to the file the request names.

Protocol, one JSON object per line. The runner says `{"ready": true, "pid", "threads", "seconds"}` once it has
imported; then on stdin it reads `{"id", "payload", "workdir", "output", "env"}` and answers
`{"id", "pid"}` when the run is forked (or `{"id", "error"}`), then `{"id", "exit"}` when it ends (the exit code
as `subprocess` gives it: negative for a signal). On end of input it kills the runs still going and exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import selectors
import signal
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, BinaryIO

WARM_MODULES = (
    # `eopf trigger local` itself: the command line, EOPF's triggering, and its science stack.
    "eopf.cli.cli",
    "eopf.cli.cli_triggering_triggers",
    "eopf.triggering.workflow",
    "eopf.dask_utils.dask_context_manager",
    # What a run opens: products in zarr on S3 through s3fs, a Dask client.
    "xarray",
    "zarr",
    "s3fs",
    "dask.array",
    "distributed",
)
"""Imported before any fork. Only imports: nothing that starts a thread, a loop or a connection (a fork copies
neither threads nor their locks' owners)."""

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Run:
    id: str
    payload: str
    workdir: str
    output: str
    env: dict[str, str]


def warm() -> float:
    """Import `WARM_MODULES`; returns the seconds it took."""
    started = time.monotonic()
    for module in WARM_MODULES:
        importlib.import_module(module)
    return time.monotonic() - started


def _reply(out: BinaryIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message).encode() + b"\n")
    out.flush()


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent (the runner) dies; exit at once if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os._exit(70)
    if os.getppid() != parent:  # the runner died between the fork and the prctl
        os._exit(70)


def _become_run(run: Run, runner: int, private_fds: list[int]) -> None:
    """In the forked child: the run's session, parent-death signal, output, environment and folders."""
    os.setsid()
    _die_with_parent(runner)
    for fd in private_fds:
        if fd <= 2:  # replaced below
            continue
        with contextlib.suppress(OSError):
            os.close(fd)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    output = os.open(run.output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    os.close(null)
    os.environ.update(run.env)
    tempfile.tempdir = None  # TMPDIR is the run's own: tempfile read the runner's when it was first asked
    _follow_run_temporaries()
    os.chdir(run.workdir)


def _follow_run_temporaries() -> None:
    """Have EOPF's configuration read the run's environment, its temporary folders being the run's TMPDIR.

    EOPF computed the defaults of its temporary folders (`temporary__folder`, `temporary__folder_local`) from the
    runner's TMPDIR when the runner imported it, and read the `EOPF_*` variables then: a run would put its
    `eoptmp-*` folders in the runner's temporary folder, outside the run's own, and left there when the run is
    killed. As in a new `eopf` process, an `EOPF_TEMPORARY__FOLDER…` variable still wins."""
    from eopf import EOConfiguration

    for name in ("EOPF_TEMPORARY__FOLDER", "EOPF_TEMPORARY__FOLDER_LOCAL"):
        os.environ.setdefault(name, tempfile.gettempdir())
    EOConfiguration().refresh_environ()


def _parse(line: bytes) -> Run | str:
    try:
        fields = json.loads(line)
        return Run(
            id=str(fields["id"]),
            payload=str(fields["payload"]),
            workdir=str(fields["workdir"]),
            output=str(fields["output"]),
            env={str(k): str(v) for k, v in dict(fields.get("env") or {}).items()},
        )
    except (ValueError, KeyError, TypeError) as err:
        return f"bad request: {err}"


def serve(requests: BinaryIO, replies: BinaryIO) -> Run | None:
    """Fork a run per request until `requests` ends. Returns in a forked child only, with its run; in the runner,
    returns None once the input has ended and the runs still going are killed."""
    runner = os.getpid()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # only to wake the loop (set_wakeup_fd)
    signal.set_wakeup_fd(wake_write)
    selector = selectors.DefaultSelector()
    selector.register(requests.fileno(), selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    private = [requests.fileno(), replies.fileno(), wake_read, wake_write, selector.fileno()]
    children: dict[int, str] = {}
    pending = b""
    ended = False
    while not ended:
        for key, _ in selector.select():
            if key.fd == wake_read:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 4096)
                continue
            data = os.read(key.fd, 65536)
            ended = not data
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in filter(None, lines):
                run = _parse(line)
                if isinstance(run, str):
                    _reply(replies, {"id": None, "error": run})
                    continue
                try:
                    pid = _fork()
                except OSError as err:
                    _reply(replies, {"id": run.id, "error": f"fork failed: {err}"})
                    continue
                if pid == 0:
                    try:
                        selector.close()
                        _become_run(run, runner, private)
                    except BaseException as err:  # never back into the runner's loop
                        with contextlib.suppress(OSError):
                            os.write(2, f"rs_eopf_hooks.runner: cannot start the run: {err}\n".encode())
                        os._exit(70)
                    return run
                children[pid] = run.id
                _reply(replies, {"id": run.id, "pid": pid})
        _reap(children, replies)
    for pid in children:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    return None


def _fork() -> int:
    with warnings.catch_warnings():
        # Python warns of a fork in a process with threads: the runner's are native pools of numpy (OpenBLAS) and
        # pyarrow (jemalloc), which handle a fork themselves; it has no Python thread (its ready message says).
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _reap(children: dict[int, str], replies: BinaryIO) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in children:
            _reply(replies, {"id": children.pop(pid), "exit": os.waitstatus_to_exitcode(status)})


def run_eopf(run: Run) -> int:
    """What `eopf trigger local` does, in this (forked) process: EOPF's own command line, its messages and exit
    code included."""
    from eopf.cli.cli import eopf_cli

    try:
        eopf_cli.main(args=["trigger", "local", run.payload, "--working-dir", run.workdir], prog_name="eopf")
    except SystemExit as exit:
        code = exit.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    return 0


def main() -> int:
    seconds = warm()
    replies = sys.stdout.buffer
    _reply(replies, {"ready": True, "pid": os.getpid(), "threads": threading.active_count(), "seconds": seconds})
    run = serve(sys.stdin.buffer, replies)
    if run is None:
        return 0
    # The forked run: sys.stdout and sys.stderr now write to its output file.
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    return run_eopf(run)


if __name__ == "__main__":
    sys.exit(main())
