"""Process groups: started detached, stopped as a group, never confused with a recycled pid."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

from rs_ondemand.stack import procs
from rs_ondemand.stack.health import wait_until


def _launch_sleeper(tmp_path: Path, name: str, script: str) -> tuple[subprocess.Popen[bytes], procs.ProcessRecord]:
    return procs.launch(
        [sys.executable, "-c", script], env=dict(os.environ), cwd=tmp_path, log_path=tmp_path / f"{name}.log"
    )


def test_launch_starts_a_new_group_and_stop_ends_all_of_it(tmp_path: Path) -> None:
    """The service leads its own group; stopping it also stops a child it spawned."""
    script = (
        "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        "print('up', flush=True); time.sleep(60)"
    )
    child, record = _launch_sleeper(tmp_path, "group", script)
    try:
        assert record.pgid == record.pid == child.pid
        assert os.getpgid(child.pid) == child.pid != os.getpgid(0)
        assert procs.is_alive(record)
        procs.terminate([record])
        assert procs.wait_gone([record], timeout=10) == []
        assert not procs.is_alive(record)
        assert procs._group_members(record.pgid) == []
    finally:
        child.wait(timeout=5)
    assert "=== " in (tmp_path / "group.log").read_text()


def test_stop_ignores_a_recycled_pid(tmp_path: Path) -> None:
    """A record whose start time differs from the live process (pid reused) is never signalled."""
    child, record = _launch_sleeper(tmp_path, "bystander", "import time; time.sleep(60)")
    try:
        stale = dataclasses.replace(record, start_ticks=record.start_ticks - 1)
        assert not procs.is_alive(stale)
        procs.signal_group(stale, signal.SIGKILL)
        assert child.poll() is None
        assert procs.is_alive(record)
    finally:
        procs.terminate([record])
        procs.wait_gone([record], timeout=10)
        child.wait(timeout=5)


def test_wait_gone_kills_a_process_ignoring_sigterm(tmp_path: Path) -> None:
    """A service that ignores SIGTERM is killed after the timeout and reported."""
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    )
    child, record = _launch_sleeper(tmp_path, "stubborn", script)
    try:
        log = tmp_path / "stubborn.log"
        # SIGTERM must arrive after the handler is installed, or the test proves nothing.
        wait_until("stubborn", lambda: log.read_text().endswith("up\n"), timeout=10, log_path=log)
        procs.terminate([record])
        assert procs.wait_gone([record], timeout=0.5) == [record]
        assert not procs.is_alive(record)
    finally:
        child.wait(timeout=5)


def test_a_process_runs_until_its_last_thread_has_exited(tmp_path: Path) -> None:
    """A process whose main thread has exited shows as a zombie while its other threads go on (a killed server's
    threads still holding its port): it counts as running until the last one is gone."""
    script = (
        "import ctypes, threading, time; threading.Thread(target=time.sleep, args=(60,)).start();"
        "print('up', flush=True); ctypes.CDLL(None).pthread_exit(None)"  # ends the main thread only
    )
    child, _ = _launch_sleeper(tmp_path, "threads", script)
    try:
        wait_until("main thread gone", lambda: procs.stat_fields(child.pid)[0] == "Z", timeout=10, log_path=None)
        assert procs.pid_running(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        wait_until("last thread gone", lambda: not procs.pid_running(child.pid), timeout=10, log_path=None)
        assert len(os.listdir(f"/proc/{child.pid}/task")) == 1  # the zombie leader alone, waiting to be reaped
    finally:
        child.wait(timeout=5)
