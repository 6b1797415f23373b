"""Fixtures shared by the whole suite: the real embedded stack, settings and clients on it, a real worker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import pytest
import pytest_asyncio
from botocore.config import Config
from temporalio.client import Client

from rs_ondemand.client import connect
from rs_ondemand.config import Settings
from rs_ondemand.stack import StackInfo
from rs_ondemand.worker import activities, running_workers
from tests.support.stack import Simulator, stack_of_its_own


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    """The real stack (Temporal, S3, PostgreSQL + pgstac catalog, simulator), once per session.

    Free ports only, and no worker: tests run their own in-process workers on queues of their own.
    """
    with stack_of_its_own(tmp_path_factory.mktemp("stack"), with_simulator=True) as launcher:
        yield launcher.up()


@pytest.fixture(scope="session")
def stack_env(stack: StackInfo) -> Iterator[dict[str, str]]:
    """The stack's env file as a dict, also set in `os.environ` for the session (settings read it there)."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in stack.env.items():
            patch.setenv(key, value)
        # Settings fall back to `$RS_STACK_DIR/env`: point it at this stack, never at a developer's ./.stack.
        patch.setenv("RS_STACK_DIR", str(stack.state_dir))
        yield dict(stack.env)


@pytest.fixture(scope="session")
def settings(stack_env: dict[str, str]) -> Settings:
    return Settings.load()


@pytest_asyncio.fixture(scope="session")
async def client(settings: Settings) -> Client:
    return await connect(settings.temporal)


@pytest_asyncio.fixture(scope="session")
async def task_queue(client: Client, settings: Settings) -> AsyncIterator[str]:
    """A real worker with every real activity, polling a queue of its own for the session."""
    queue = f"tq-{uuid.uuid4()}"
    async with activities(settings) as fns, running_workers(client, settings, fns, task_queue=queue):
        yield queue


@pytest.fixture
def simulator(settings: Settings, stack_env: dict[str, str]) -> Iterator[Simulator]:
    sim = Simulator(stack_env["SIMULATOR_URL"])
    sim.clear_faults()
    yield sim
    sim.clear_faults()
    sim.close()


@pytest.fixture(scope="session")
def s3(settings: Settings) -> Any:
    """A plain boto3 client, to check what landed in S3 independently of the code under test."""
    return boto3.client(
        "s3",
        endpoint_url=settings.s3.s3_endpoint_url,
        region_name=settings.s3.aws_default_region,
        aws_access_key_id=settings.s3.aws_access_key_id.get_secret_value(),  # type: ignore[union-attr]
        aws_secret_access_key=settings.s3.aws_secret_access_key.get_secret_value(),  # type: ignore[union-attr]
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


@pytest.fixture
def collection() -> str:
    """A catalog collection of the test's own, so tests never see each other's items."""
    return f"test-{uuid.uuid4().hex[:10]}"
