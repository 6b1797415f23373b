"""A second embedded stack for the crash tests that stop services (Temporal, catalog, S3, simulator): the session
stack is never disturbed. Built once, on first use, and shared by those tests (they run one after the other)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import pytest
import pytest_asyncio
from botocore.config import Config
from temporalio.client import Client

from rs_ondemand.bench.chaos.procs import kill_worker
from rs_ondemand.client import connect
from rs_ondemand.config import Settings
from tests.support.cadip_staging import start_worker
from tests.support.own_stack import OwnStack, StagingRun, WorkerProcess
from tests.support.stack import Simulator, stack_of_its_own


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


WORKER_MODULE = "tests.reliability.short_heartbeats_worker"


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def module_worker(own_stack: OwnStack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WorkerProcess]:
    """The worker as a process on the own stack, its heartbeat timeouts scaled down (`short_heartbeats_worker`:
    a killed worker's transfers are retried sooner), polling a queue of its own. Shared by a module's tests: a
    worker process spends seconds importing before it polls, and each test's request and collection are its own."""
    queue = f"tq-rel-{uuid.uuid4()}"
    log = tmp_path_factory.mktemp("rel-worker") / "worker.log"
    process = await start_worker(queue, log, own_stack.env, module=WORKER_MODULE)
    worker = WorkerProcess(queue, log, process, module=WORKER_MODULE)
    yield worker
    await asyncio.to_thread(kill_worker, worker.process)


@pytest_asyncio.fixture(loop_scope="session")
async def own_worker(own_stack: OwnStack, module_worker: WorkerProcess) -> WorkerProcess:
    """The module's worker process, started again first if a test before this one left it dead."""
    if not module_worker.alive():
        module_worker.process = await start_worker(
            module_worker.queue, module_worker.log, own_stack.env, module=WORKER_MODULE
        )
    return module_worker


@pytest.fixture
def own_collection() -> str:
    return f"rel-{uuid.uuid4().hex[:10]}"


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
