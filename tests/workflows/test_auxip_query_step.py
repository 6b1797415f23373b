"""The reusable AUXIP-staging step: catalog items back, empty queries, and its timeout over search + staging."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from temporalio.client import Client

from rs_ondemand.config import Settings
from rs_ondemand.worker import activities, running_workers
from tests.support.auxip_query import run_query
from tests.support.auxip_query_workflow import AuxipQueryWorkflow
from tests.support.stack import Simulator


@pytest_asyncio.fixture(loop_scope="session")
async def queue(client: Client, settings: Settings) -> AsyncIterator[str]:
    name = f"tq-query-{uuid.uuid4()}"
    async with (
        activities(settings) as fns,
        running_workers(client, settings, fns, task_queue=name, extra_workflows=[AuxipQueryWorkflow]),
    ):
        yield name


async def test_found_files_come_back_as_catalog_items(client: Client, queue: str, settings: Settings) -> None:
    outcome = await run_query(client, queue, "AUX_RESORB", timeout_seconds=0)  # 0: no limit
    assert not outcome.timed_out
    (item,) = outcome.items  # limit 1: the newest one
    (href,) = item.assets.values()
    assert href.startswith(f"s3://{settings.s3.rs_bucket}/dave/{item.collection}/{item.id}/")


async def test_nothing_found_is_an_empty_outcome(client: Client, queue: str) -> None:
    outcome = await run_query(client, queue, "NO_SUCH_TYPE", timeout_seconds=-1)
    assert outcome.items == [] and not outcome.timed_out


async def test_a_slow_station_runs_into_the_timeout(client: Client, queue: str, simulator: Simulator) -> None:
    simulator.faults(auxip={"latency_ms": 4000})
    outcome = await run_query(client, queue, "AUX_RESORB", timeout_seconds=2)
    assert outcome.timed_out and outcome.items == []
