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

from rs_ondemand._allocator import keep_large_buffers
from rs_ondemand.activities.catalog import CatalogActivities, CatalogClient
from rs_ondemand.activities.processor import ProcessorActivities, remove_abandoned_run_folders
from rs_ondemand.activities.stations import StationActivities, StationRegistry
from rs_ondemand.activities.storage import ObjectStore, StorageActivities
from rs_ondemand.activities.temporal import TemporalActivities
from rs_ondemand.client import connect
from rs_ondemand.config import Settings
from rs_ondemand.errors import ErrorTranslationInterceptor
from rs_ondemand.names import download_task_queue, processor_task_queue
from rs_ondemand.telemetry import configure_tracing
from rs_ondemand.workflows.cadip_staging import OnDemandCadipStaging
from rs_ondemand.workflows.dpr_processing import DprProcessing
from rs_ondemand.workflows.processing_unit import ProcessingUnit
from rs_ondemand.workflows.scheduled_staging import ScheduledStaging
from rs_ondemand.workflows.staging import Staging
from rs_ondemand.workflows.window_staging import OnDemandAuxipStaging, OnDemandPripStaging

log = logging.getLogger("rs_ondemand.worker")

WORKFLOWS: list[type] = [
    OnDemandCadipStaging,
    OnDemandPripStaging,
    OnDemandAuxipStaging,
    DprProcessing,
    ProcessingUnit,
    Staging,
    ScheduledStaging,
]


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
            ProcessorActivities(store, settings.processor),
            TemporalActivities(),
        ]
        yield [getattr(group, name) for group in groups for name in _activity_names(group)]


def _activity_names(group: object) -> list[str]:
    return [name for name in dir(type(group)) if hasattr(getattr(type(group), name), "__temporal_activity_definition")]


@asynccontextmanager
async def running_workers(
    client: Client,
    settings: Settings,
    activity_fns: list[Any],
    task_queue: str | None = None,
    extra_workflows: list[type] | None = None,
) -> AsyncIterator[list[Worker]]:
    """The main worker (every workflow and activity) plus one download worker per station.

    A station's downloads run on their own queue, whose worker slots are the station's concurrency limit
    (and whose server-side rate limit is its requests-per-minute cap), whatever the number of requests.
    """
    queue = task_queue or settings.worker.task_queue
    common: dict[str, Any] = {
        "interceptors": [ErrorTranslationInterceptor()],
        # Cancels reach activities only on a heartbeat response: keep that delay short for operators.
        "max_heartbeat_throttle_interval": timedelta(seconds=2),
        "graceful_shutdown_timeout": timedelta(seconds=10),
    }
    workers = [
        Worker(
            client,
            task_queue=queue,
            workflows=WORKFLOWS + (extra_workflows or []),
            activities=activity_fns,
            max_concurrent_activities=settings.worker.max_concurrent_activities,
            **common,
        )
    ]
    stream = [fn for fn in activity_fns if getattr(fn, "__name__", "") == "stream_asset"]
    # EOPF runs have a queue of their own, with few slots: a burst of processing never starves staging.
    processor = [fn for fn in activity_fns if getattr(fn, "__name__", "") == "run_processor"]
    workers.append(
        Worker(
            client,
            task_queue=processor_task_queue(queue),
            activities=processor,
            max_concurrent_activities=settings.processor.max_concurrent_runs,
            **common,
        )
    )
    for station in settings.stations:
        rpm = station.max_requests_per_minute
        workers.append(
            Worker(
                client,
                task_queue=download_task_queue(queue, station.kind),
                activities=stream,
                max_concurrent_activities=station.max_concurrent_downloads,
                max_task_queue_activities_per_second=rpm / 60 if rpm else None,
                **common,
            )
        )
    async with AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        yield workers


async def run(settings: Settings) -> None:
    configure_tracing(settings.telemetry)
    client = await connect(settings.temporal)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # A worker of this machine killed before (SIGKILL, OOM) could not remove its EOPF run folders.
    await asyncio.to_thread(remove_abandoned_run_folders)
    async with activities(settings) as activity_fns, running_workers(client, settings, activity_fns):
        log.info("Worker started on task queue %r at %s", settings.worker.task_queue, settings.temporal.address)
        await stop.wait()
    log.info("Worker stopped")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keep_large_buffers()
    asyncio.run(run(Settings.load()))


if __name__ == "__main__":
    main()
