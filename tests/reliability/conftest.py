"""A second embedded stack for the crash tests that stop services (Temporal, catalog, S3, simulator): the session
stack is never disturbed. Built once, on first use, and shared by those tests (they run one after the other)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import pytest_asyncio
from botocore.config import Config
from temporalio.client import Client

from rs_ondemand.client import connect
from rs_ondemand.config import Settings
from rs_ondemand.stack import Stack, StackInfo, procs
from rs_ondemand.stack.health import wait_until
from rs_ondemand.stack.watchdog import guarded
from tests.helpers import Simulator
from tests.reliability._support import kill_worker, start_worker


def _exited(pid: int) -> bool:
    """Whether every thread of `pid` has exited. The leader of a multi-threaded process shows as a zombie while its
    other threads are still exiting and holding its sockets: its port is not free yet, and the launcher's reaping
    of it would find it still running (a ResourceWarning, and the service restarted on another port)."""
    if procs.pid_running(pid):
        return False
    try:
        return len(os.listdir(f"/proc/{pid}/task")) <= 1
    except FileNotFoundError:
        return True


class OwnStack:
    """A `Stack` of the tests' own, whose services the tests stop, freeze and bring back one at a time."""

    def __init__(self, launcher: Stack) -> None:
        self.launcher = launcher
        self.info: StackInfo = launcher.up()

    @property
    def env(self) -> dict[str, str]:
        # RS_STACK_DIR too: the settings' fallback env file must be this stack's.
        return {**self.info.env, "RS_STACK_DIR": str(self.info.state_dir)}

    def settings(self) -> Settings:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in self.env.items():
                patch.setenv(key, value)
            return Settings.load()

    def pid(self, service: str) -> int:
        pid = self.info.services[service].pid
        assert pid is not None, service
        return pid

    def stop(self, service: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal the service's process group and wait until it is gone (SIGKILL: a crash)."""
        pid = self.pid(service)
        os.killpg(pid, sig)
        wait_until(f"{service} to stop", lambda: _exited(pid), timeout=30, log_path=None)

    def restore(self, **environment: str) -> None:
        """`up`: start again what is not running (same ports, same Temporal db; S3 gets its buckets back).
        `environment` is added to what the restarted services see."""
        before = dict(self.info.env)
        with pytest.MonkeyPatch.context() as patch:
            for key, value in environment.items():
                patch.setenv(key, value)
            self.info = self.launcher.up()
        # Clients and workers were given these addresses: a service back on another port would be another test.
        assert self.info.env == before, "a restarted service changed its address"

    def freeze(self, service: str) -> None:
        os.killpg(self.pid(service), signal.SIGSTOP)

    def thaw(self, service: str) -> None:
        os.killpg(self.pid(service), signal.SIGCONT)


@pytest.fixture(scope="session")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnStack]:
    launcher = Stack(
        tmp_path_factory.mktemp("own-stack"),
        with_worker=False,
        with_simulator=True,
        prefer_default_ports=False,
        notify=lambda message: None,
    )
    with guarded(launcher, purge=True):
        yield OwnStack(launcher)


@pytest.fixture(scope="session")
def own_settings(own_stack: OwnStack) -> Settings:
    return own_stack.settings()


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def own_client(own_settings: Settings) -> Client:
    return await connect(own_settings.temporal)


@pytest.fixture(scope="session")
def own_s3(own_settings: Settings) -> Iterator[Any]:
    s3 = own_settings.s3
    client = boto3.client(
        "s3",
        endpoint_url=s3.s3_endpoint_url,
        region_name=s3.aws_default_region,
        aws_access_key_id=s3.aws_access_key_id.get_secret_value(),  # type: ignore[union-attr]
        aws_secret_access_key=s3.aws_secret_access_key.get_secret_value(),  # type: ignore[union-attr]
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 10, "mode": "standard"},
        ),
    )
    yield client
    client.close()


@pytest.fixture
def own_simulator(own_stack: OwnStack) -> Iterator[Simulator]:
    sim = Simulator(own_stack.info.env["SIMULATOR_URL"])
    sim.clear_faults()
    sim.reset_stats()
    yield sim
    sim.clear_faults()
    sim.close()


@dataclass
class WorkerProcess:
    queue: str
    log: Path
    process: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.process.poll() is None


@pytest_asyncio.fixture(loop_scope="session")
async def own_worker(own_stack: OwnStack, tmp_path: Path) -> AsyncIterator[WorkerProcess]:
    """`python -m rs_ondemand.worker` on the own stack, polling a queue of the test's own."""
    queue = f"tq-rel-{uuid.uuid4()}"
    log = tmp_path / "worker.log"
    worker = WorkerProcess(queue, log, await start_worker(queue, log, own_stack.env))
    yield worker
    await asyncio.to_thread(kill_worker, worker.process)


@pytest.fixture
def own_collection() -> str:
    return f"rel-{uuid.uuid4().hex[:10]}"
