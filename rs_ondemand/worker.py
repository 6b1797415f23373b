"""The worker: the one registry of workflows and activities, polling the `rs-ondemand` task queue."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from rs_ondemand.activities.catalog import CatalogActivities, CatalogClient
from rs_ondemand.activities.stations import StationActivities, StationRegistry
from rs_ondemand.activities.storage import ObjectStore, StorageActivities
from rs_ondemand.client import connect
from rs_ondemand.config import Settings
from rs_ondemand.errors import ErrorTranslationInterceptor
from rs_ondemand.workflows.cadip_staging import OnDemandCadipStaging
from rs_ondemand.workflows.staging import Staging

log = logging.getLogger("rs_ondemand.worker")

WORKFLOWS: list[type] = [OnDemandCadipStaging, Staging]


@asynccontextmanager
async def activities(settings: Settings) -> AsyncIterator[list[Any]]:
    """Every activity, bound to clients built once per worker and closed when it stops."""
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(ObjectStore.open(settings.s3))
        # Downloads are long: no overall timeout, but connect/read stalls are bounded per station.
        http = await stack.enter_async_context(
            httpx.AsyncClient(timeout=httpx.Timeout(60.0), limits=httpx.Limits(max_connections=200))
        )
        stations = StationRegistry(settings.stations, http)
        catalog = CatalogClient(settings.catalog, http)
        groups = [
            StationActivities(stations, store),
            StorageActivities(store),
            CatalogActivities(catalog, store),
        ]
        yield [getattr(group, name) for group in groups for name in _activity_names(group)]


def _activity_names(group: object) -> list[str]:
    return [name for name in dir(type(group)) if hasattr(getattr(type(group), name), "__temporal_activity_definition")]


def build_worker(client: Client, settings: Settings, activity_fns: list[Any], task_queue: str | None = None) -> Worker:
    return Worker(
        client,
        task_queue=task_queue or settings.worker.task_queue,
        workflows=WORKFLOWS,
        activities=activity_fns,
        interceptors=[ErrorTranslationInterceptor()],
        max_concurrent_activities=settings.worker.max_concurrent_activities,
        # Cancels reach activities only on a heartbeat response: keep that delay short for operators.
        max_heartbeat_throttle_interval=timedelta(seconds=2),
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run(settings: Settings) -> None:
    client = await connect(settings.temporal)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with activities(settings) as activity_fns, build_worker(client, settings, activity_fns):
        log.info("Worker started on task queue %r at %s", settings.worker.task_queue, settings.temporal.address)
        await stop.wait()
    log.info("Worker stopped")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(Settings.load()))


if __name__ == "__main__":
    main()
