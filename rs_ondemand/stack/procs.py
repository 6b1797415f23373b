"""Start services as their own process groups and stop exactly those groups, surviving pid reuse."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ProcessRecord:
    """What `down` needs to find a started process again (kept in state.json).

    `start_ticks` is the kernel start time of the process: with it a recycled pid is never mistaken
    for ours.
    """

    pid: int
    pgid: int
    start_ticks: int
    argv: list[str]
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRecord:
        return cls(
            pid=int(data["pid"]),
            pgid=int(data["pgid"]),
            start_ticks=int(data["start_ticks"]),
            argv=[str(a) for a in data.get("argv", [])],
            started_at=str(data.get("started_at", "")),
        )


def stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state, ppid, pgrp, session, ...), or None when the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """Kernel start time of `pid` in clock ticks since boot, or None when it does not exist."""
    fields = stat_fields(pid)
    return int(fields[19]) if fields else None


def pid_running(pid: int) -> bool:
    """Whether `pid` exists and has not exited, all its threads: a process killed shows as a zombie as soon as
    its main thread is gone, while its other threads may still be exiting and holding its sockets (its port is
    not free yet)."""
    fields = stat_fields(pid)
    if fields is None:
        return False
    if fields[0] not in ("Z", "X"):
        return True
    # A zombie with no other thread has exited: it only waits for its parent to collect it.
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


def is_alive(record: ProcessRecord) -> bool:
    """Whether the recorded process still runs (same pid *and* same start time)."""
    return pid_running(record.pid) and start_ticks(record.pid) == record.start_ticks


def record_for(pid: int, argv: Sequence[str], pgid: int | None = None) -> ProcessRecord:
    """A record of an already running process, e.g. a daemon that forked away from us."""
    ticks = start_ticks(pid)
    if ticks is None:
        raise ProcessLookupError(pid)
    return ProcessRecord(pid=pid, pgid=pgid if pgid is not None else pid, start_ticks=ticks, argv=list(argv))


def launch(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path
) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    """Start `argv` in a new session (its own process group) with stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n=== {stamp} start: {' '.join(argv)}\n".encode())
        log.flush()
        # A new session detaches the service from our terminal, so Ctrl-C on `stack up` or the end of
        # the CLI does not kill it, and `down` can signal the whole group (children included).
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    ticks = start_ticks(proc.pid)
    return proc, ProcessRecord(pid=proc.pid, pgid=proc.pid, start_ticks=ticks or 0, argv=list(argv))


def _group_members(pgid: int) -> list[int]:
    """Running (non-zombie) processes of process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = stat_fields(int(entry.name))
        if fields and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _reap(pid: int) -> None:
    # Collect our own children, which would otherwise stay zombies and look alive to kill(pid, 0).
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def signal_group(record: ProcessRecord, sig: signal.Signals) -> None:
    """Send `sig` to the record's process group while it is still ours.

    Ours means: the leader runs with the recorded start time, or it has exited and only members it left
    behind remain (its pid then still names nothing else).
    """
    if not is_alive(record) and not _group_members(record.pgid):
        return
    ticks = start_ticks(record.pid)
    if ticks is not None and ticks != record.start_ticks:
        # The pid now names another process (it may lead its own group): not ours. While any member of our
        # group lives, the kernel never hands its id out again, so a dead leader with live members is safe.
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(record.pgid, sig)


def terminate(records: Iterable[ProcessRecord]) -> None:
    """Ask every recorded group to stop (SIGTERM) without waiting, so slow shutdowns overlap."""
    for record in records:
        signal_group(record, signal.SIGTERM)


def _gone(record: ProcessRecord) -> bool:
    _reap(record.pid)
    return not is_alive(record) and not _group_members(record.pgid)


def wait_gone(records: Iterable[ProcessRecord], *, timeout: float = 15.0) -> list[ProcessRecord]:
    """Wait up to `timeout` seconds for the groups to exit, then SIGKILL what is left.

    Returns the records that had to be killed.
    """
    pending = list(records)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [record for record in pending if not _gone(record)]
        if pending:
            time.sleep(0.1)
    for record in pending:
        signal_group(record, signal.SIGKILL)
    kill_deadline = time.monotonic() + 5.0
    while time.monotonic() < kill_deadline and not all(_gone(record) for record in pending):
        time.sleep(0.05)
    return pending
