"""A second embedded stack for the crash tests that stop services (Temporal, catalog, S3, simulator): the session
stack is never disturbed. Built once, on first use, and shared by those tests (they run one after the other)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
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
