"""A second embedded stack for the crash tests that stop services (Temporal, catalog, S3, simulator): the session
stack is never disturbed. Built once, on first use, and shared by those tests (they run one after the other)."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
import pytest_asyncio
from botocore.config import Config
from temporalio.client import Client, WorkflowHandle

from rs_ondemand.bench.chaos.procs import kill_worker
from rs_ondemand.bench.chaos.services import ServiceControl
from rs_ondemand.client import connect
from rs_ondemand.config import Settings
from rs_ondemand.models.progress import Progress, State
from rs_ondemand.models.staging import CadipStagingResult
from rs_ondemand.names import PROGRESS_QUERY, RETRY_SIGNAL
from rs_ondemand.stack import Stack, StackInfo
from tests.reliability._support import (
    MiB,
    assert_session_staged,
    new_session,
    progress_until,
    result_of,
    start_staging,
    start_worker,
)
from tests.support.stack import Simulator, stack_of_its_own


class OwnStack(ServiceControl):
    """A `Stack` of the tests' own, whose services the tests stop, freeze and bring back one at a time."""

    def __init__(self, launcher: Stack) -> None:
        super().__init__(launcher, launcher.up())

    @property
    def env(self) -> dict[str, str]:
        # RS_STACK_DIR too: the settings' fallback env file must be this stack's.
        return {**self.info.env, "RS_STACK_DIR": str(self.info.state_dir)}

    def settings(self) -> Settings:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in self.env.items():
                patch.setenv(key, value)
            return Settings.load()

    def restore(self, **environment: str) -> StackInfo:
        """`up` (`ServiceControl.restore`), `environment` added to what the restarted services see."""
        with pytest.MonkeyPatch.context() as patch:
            for key, value in environment.items():
                patch.setenv(key, value)
            return super().restore()


@pytest.fixture(scope="session")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnStack]:
    with stack_of_its_own(tmp_path_factory.mktemp("own-stack"), with_simulator=True) as launcher:
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

    async def crash_and_restart(self, env: dict[str, str]) -> None:
        """SIGKILL (nothing of the process gets to clean up), then a new worker process on the same queue."""
        await asyncio.to_thread(kill_worker, self.process)
        self.process = await start_worker(self.queue, self.log, env)


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


@dataclass
class StagingRun:
    """One CADIP staging request run by the test's worker process on the own stack, and the services to take
    down under it: a test says only what it stages, what happens to which service, and what it expects."""

    stack: OwnStack
    settings: Settings
    client: Client
    s3: Any
    simulator: Simulator
    worker: WorkerProcess
    collection: str
    session: str = ""
    chunks: int | None = None
    """How many chunk files the session has, when `new_session` generated it."""
    _handle: WorkflowHandle[Any, CadipStagingResult] | None = field(default=None, init=False, repr=False)

    def new_session(self, chunks: int, chunk_size: int = 2 * MiB) -> str:
        """A generated one-channel session of `chunks` chunk files: the one `start` stages."""
        self.session, self.chunks = new_session(self.simulator, chunks, chunk_size), chunks
        return self.session

    async def start(self, *, latency_ms: int | None = None, **options: Any) -> WorkflowHandle[Any, CadipStagingResult]:
        """Start staging `session` (the station answering `latency_ms` late, to spread the transfers over time;
        `options`: the request's operator options)."""
        if latency_ms is not None:
            self.simulator.faults(cadip={"latency_ms": latency_ms})
        self._handle = await start_staging(self.client, self.worker.queue, self.session, self.collection, **options)
        return self._handle

    @property
    def handle(self) -> WorkflowHandle[Any, CadipStagingResult]:
        assert self._handle is not None, "the request is not started"
        return self._handle

    async def progress_until(self, done: Callable[[Progress], bool], within_s: float = 90) -> Progress:
        return await progress_until(self.handle, done, within_s)

    async def transferred(self, assets: int) -> Progress:
        """Once `assets` assets of the request are transferred (its transfers under way)."""
        return await self.progress_until(lambda p: p.assets_done >= assets)

    async def waiting_for_operator(self, within_s: float = 90) -> Progress:
        return await self.progress_until(lambda p: p.state == State.WAITING_FOR_OPERATOR, within_s)

    async def progress(self) -> Progress:
        return await self.handle.query(PROGRESS_QUERY, result_type=Progress)

    async def retry(self) -> None:
        await self.handle.signal(RETRY_SIGNAL)

    async def worker_crashes(self) -> None:
        """The worker process running the request is killed and started again."""
        await self.worker.crash_and_restart(self.stack.env)

    @asynccontextmanager
    async def _between(self, begin: Callable[[], None], end: Callable[[], None]) -> AsyncIterator[None]:
        await asyncio.to_thread(begin)
        try:
            yield
        finally:
            await asyncio.to_thread(end)

    def down(self, service: str, **environment: str) -> AbstractAsyncContextManager[None]:
        """`service` killed (SIGKILL) for the block, then started again at the same address (`environment` added
        to what it sees)."""
        return self._between(partial(self.stack.stop, service), partial(self.stack.restore, **environment))

    def frozen(self, service: str) -> AbstractAsyncContextManager[None]:
        """`service` stopped (SIGSTOP: unresponsive, nothing lost) for the block, then carrying on (SIGCONT)."""
        return self._between(partial(self.stack.freeze, service), partial(self.stack.thaw, service))

    async def restart(self, service: str, **environment: str) -> None:
        """`service` killed and started again at once (a new process: what it kept in memory is gone)."""
        async with self.down(service, **environment):
            pass

    @asynccontextmanager
    async def restarted_with(self, service: str, **environment: str) -> AsyncIterator[None]:
        """`service` restarted with `environment` added to what it sees for the block, then restarted with its
        defaults again, for the other tests of this stack."""
        await self.restart(service, **environment)
        try:
            yield
        finally:
            await self.restart(service)

    async def completes(self) -> CadipStagingResult:
        """The request's result once it is over: it completed, staged its session (every chunk of it, when
        generated) and left the catalog and S3 consistent with what the station announces."""
        result = await result_of(self.handle)
        assert result.staging.staged == [self.session]
        final = await self.progress()
        assert final.state == State.COMPLETED
        if self.chunks is not None:
            assert result.staging.assets_staged == self.chunks
            assert final.assets_done == self.chunks
        assert_session_staged(self.settings, self.s3, self.collection, self.session, self.handle.id)
        return result


@pytest.fixture
def run(
    own_stack: OwnStack,
    own_settings: Settings,
    own_client: Client,
    own_s3: Any,
    own_simulator: Simulator,
    own_worker: WorkerProcess,
    own_collection: str,
) -> StagingRun:
    """The test's CADIP staging request on the own stack (`StagingRun`), not started yet."""
    return StagingRun(own_stack, own_settings, own_client, own_s3, own_simulator, own_worker, own_collection)
