"""A service that cannot start: `up` says which, quotes its log and stops what it had started."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rs_ondemand.stack import Stack, StackError, launcher, procs
from rs_ondemand.stack.services import S3Service
from rs_ondemand.stack.state import StackState


def test_up_failure_names_the_service_quotes_its_log_and_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 dies at start-up: StackError names it with its last log lines; Temporal, started first, is stopped."""
    monkeypatch.setattr(launcher, "SERVICE_NAMES", ("temporal", "s3"))
    monkeypatch.setattr(
        S3Service, "command", lambda self: [sys.executable, "-c", "import sys; print('boom: no S3 today'); sys.exit(3)"]
    )
    stack = Stack(tmp_path, with_worker=False, prefer_default_ports=False, notify=lambda message: None)
    with pytest.raises(StackError) as raised:
        stack.up()
    error = raised.value
    assert error.summary == "s3 exited during start-up"
    assert error.log_path == tmp_path / "logs" / "s3.log"
    assert "boom: no S3 today" in error.log_tail
    assert "boom: no S3 today" in str(error)

    state = StackState.load(tmp_path)
    assert state.processes == {}
    assert "temporal" in state.ports  # kept: the next `up` reuses them
    assert not (tmp_path / "env").exists()
    temporal_log = (tmp_path / "logs" / "temporal.log").read_text()
    assert "start-dev" in temporal_log
    assert _processes_mentioning(str(tmp_path / "temporal.db")) == []
    assert stack.down() == []


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if text in cmdline and procs.pid_running(int(entry.name)):
            found.append(int(entry.name))
    return found


# One line, and the marker never spelled out: the command is echoed in the log's header line.
FAKE_WORKER = (
    "import os, time; e = os.environ; print('polling', e['TEMPORAL_ADDRESS'], e['RS_TASK_QUEUE'], e['RS_STACK_DIR']);"
    " print('Worker', 'started'); time.sleep(60)"
)


def test_worker_gets_the_stack_env_and_is_ready_on_its_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker runs with the env file's variables, is ready once it logs the marker and stops first."""
    from rs_ondemand.stack.services import WorkerService

    monkeypatch.setattr(launcher, "SERVICE_NAMES", ("temporal", "worker"))
    monkeypatch.setattr(WorkerService, "command", lambda self: [sys.executable, "-c", FAKE_WORKER])
    stack = Stack(tmp_path, prefer_default_ports=False, notify=lambda message: None)
    try:
        info = stack.up()
        log = (tmp_path / "logs" / "worker.log").read_text()
        assert f"polling {info.temporal_address} rs-ondemand {tmp_path}" in log
        assert stack.status()["services"]["worker"]["healthy"]
    finally:
        assert stack.down(purge=True) == ["temporal", "worker"]
    assert _processes_mentioning(FAKE_WORKER) == []


def test_a_code_change_restarts_the_worker_on_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker keeps the code it started with: `up` after an edit replaces it, and only it."""
    from rs_ondemand.stack.services import WorkerService

    monkeypatch.setattr(launcher, "SERVICE_NAMES", ("temporal", "worker"))
    monkeypatch.setattr(WorkerService, "command", lambda self: [sys.executable, "-c", FAKE_WORKER])
    messages: list[str] = []
    stack = Stack(tmp_path, prefer_default_ports=False, notify=messages.append)
    try:
        first = stack.up()
        assert stack.up().services["worker"].pid == first.services["worker"].pid  # same code: kept
        monkeypatch.setattr(launcher, "code_fingerprint", lambda: "edited")
        after_edit = stack.up()
        assert after_edit.services["worker"].pid != first.services["worker"].pid
        assert after_edit.services["temporal"].pid == first.services["temporal"].pid
        assert "the code changed since the worker started: restarting it" in messages
    finally:
        stack.down(purge=True)
    assert _processes_mentioning(FAKE_WORKER) == []
