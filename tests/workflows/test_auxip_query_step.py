"""The reusable AUXIP-staging step: catalog items back, empty queries, and its timeout over search + staging."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest_asyncio
from temporalio.client import Client

from rs_ondemand.config import Settings
from rs_ondemand.cql2_filters import valcover_filter
from rs_ondemand.models.staging import QueryStagingOutcome, StacQuery
from rs_ondemand.worker import activities, running_workers
from tests.support.stack import Simulator
from tests.workflows.auxip_query_workflow import AuxipQueryInput, AuxipQueryWorkflow

SESSION_TIME = (datetime(2024, 11, 14, 14, 30, tzinfo=UTC), datetime(2024, 11, 14, 14, 35, tzinfo=UTC))
NEWEST_FIRST = [{"field": "created", "direction": "desc"}]


@pytest_asyncio.fixture(loop_scope="session")
async def queue(client: Client, settings: Settings) -> AsyncIterator[str]:
    name = f"tq-query-{uuid.uuid4()}"
    async with (
        activities(settings) as fns,
        running_workers(client, settings, fns, task_queue=name, extra_workflows=[AuxipQueryWorkflow]),
    ):
        yield name


async def run_query(client: Client, queue: str, product_type: str, timeout_seconds: int) -> QueryStagingOutcome:
    request = AuxipQueryInput(
        query=StacQuery(filter=valcover_filter(*SESSION_TIME, product_type), sortby=NEWEST_FIRST, limit=1),
        collection=f"test-{uuid.uuid4().hex[:10]}",
        timeout_seconds=timeout_seconds,
    )
    return await client.execute_workflow(
        AuxipQueryWorkflow.run, request, id=f"test-query-{uuid.uuid4()}", task_queue=queue
    )


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
