"""A stack of a test's own whose services the test stops, freezes and brings back, a worker process on it, and one
CADIP staging request run there (`StagingRun`): what the reliability tests' fixtures hand to the tests."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from rs_ondemand.bench.chaos.procs import kill_worker
from rs_ondemand.bench.chaos.services import ServiceControl
from rs_ondemand.config import Settings
from rs_ondemand.models.progress import Progress, State
from rs_ondemand.models.staging import CadipStagingResult
from rs_ondemand.names import PROGRESS_QUERY, RETRY_SIGNAL
from rs_ondemand.stack import Stack, StackInfo
from tests.support.cadip_staging import (
    MiB,
    assert_session_staged,
    new_session,
    progress_until,
    result_of,
    start_staging,
    start_worker,
)
from tests.support.stack import Simulator


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


@dataclass
class WorkerProcess:
    queue: str
    log: Path
    process: subprocess.Popen[bytes]
    module: str = "rs_ondemand.worker"
    """What `python -m` runs: the worker, or a test module that runs it with other settings."""

    def alive(self) -> bool:
        return self.process.poll() is None

    async def crash_and_restart(self, env: dict[str, str]) -> None:
        """SIGKILL (nothing of the process gets to clean up), then a new worker process on the same queue."""
        await asyncio.to_thread(kill_worker, self.process)
        self.process = await start_worker(self.queue, self.log, env, module=self.module)


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
