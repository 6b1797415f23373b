"""Fixtures for workflow tests: settings from the real stack, a client, an in-process worker, helpers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import httpx
import pytest
import pytest_asyncio
from botocore.config import Config
from temporalio.client import Client

from rs_ondemand.client import connect
from rs_ondemand.config import Settings
from rs_ondemand.worker import activities, build_worker


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
    async with activities(settings) as fns, build_worker(client, settings, fns, task_queue=queue):
        yield queue


class Simulator:
    """The station simulator's test controls (interface.md: /_faults, /_stats)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def faults(self, **per_station: dict[str, Any]) -> None:
        self.http.put("/_faults", json={"stations": per_station}).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/_faults").raise_for_status()

    def stats(self, station: str) -> dict[str, Any]:
        response = self.http.get("/_stats")
        response.raise_for_status()
        return response.json()[station]


@pytest.fixture
def simulator(settings: Settings, stack_env: dict[str, str]) -> Iterator[Simulator]:
    sim = Simulator(stack_env["SIMULATOR_URL"])
    sim.clear_faults()
    yield sim
    sim.clear_faults()
    sim.http.close()


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
