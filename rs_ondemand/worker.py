"""The worker: the one registry of workflows and activities, and which task queues a worker process polls.

A process has a role: `staging` polls the main queue (every workflow, and every activity but EOPF runs) and
the stations' download queues; `processing` polls the EOPF queue `<queue>-processor` only; `all` polls both,
as on one machine. Each role scales on its own (Compose services, Kubernetes deployments).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.worker import Worker

from rs_ondemand._allocator import keep_large_buffers
from rs_ondemand.activities.batches import BatchActivities
from rs_ondemand.activities.catalog import CatalogActivities
from rs_ondemand.activities.catalog_client import CatalogClient
from rs_ondemand.activities.eopf_env import EopfProcessors
from rs_ondemand.activities.eopf_process import remove_abandoned_run_folders
from rs_ondemand.activities.processor import ProcessorActivities
from rs_ondemand.activities.stations import StationActivities, StationClients
from rs_ondemand.activities.storage import ObjectStore, StorageActivities
from rs_ondemand.activities.temporal import TemporalActivities
from rs_ondemand.client import TemporalConnectionError, connect, connection_error
from rs_ondemand.config import Settings
from rs_ondemand.errors import ErrorTranslationInterceptor
from rs_ondemand.health import Health, serving
from rs_ondemand.names import WorkerRole, download_task_queue, processor_task_queue
from rs_ondemand.telemetry import configure_tracing
from rs_ondemand.workflows.cadip_staging import OnDemandCadipStaging
from rs_ondemand.workflows.collection_publisher import CollectionPublisher
from rs_ondemand.workflows.dpr_processing import DprProcessing
from rs_ondemand.workflows.processing_unit import ProcessingUnit
from rs_ondemand.workflows.scheduled_staging import ScheduledStaging
from rs_ondemand.workflows.staging import Staging
from rs_ondemand.workflows.staging_pages import StagingPages
from rs_ondemand.workflows.window_staging import OnDemandAuxipStaging, OnDemandPripStaging

log = logging.getLogger("rs_ondemand.worker")

CHECK_INTERVAL_S = 10.0
"""How often a running worker checks that the frontend answers and that its pollers run (the health endpoint)."""

WORKFLOWS: list[type] = [
    OnDemandCadipStaging,
    OnDemandPripStaging,
    OnDemandAuxipStaging,
    DprProcessing,
    ProcessingUnit,
    Staging,
    ScheduledStaging,
    CollectionPublisher,
    StagingPages,
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
        stations = StationClients(settings.station_registry(), http)
        catalog = CatalogClient(settings.catalog, http)
        processors = EopfProcessors(settings.processor.executable)
        processors.start()
        stack.push_async_callback(processors.stop)
        processor = ProcessorActivities(store, settings.processor, catalog, processors)
        stack.push_async_callback(processor.aclose)  # its warm EOPF runner, if a run started it
        groups = [
            StationActivities(stations, store),
            BatchActivities(stations, store, settings.transfers),
            StorageActivities(store, catalog),
            CatalogActivities(catalog, store),
            processor,
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
    role: WorkerRole = "all",
) -> AsyncIterator[list[Worker]]:
    """The workers of a role: staging, the main worker (every workflow and activity) plus one download worker
    per station; processing, the EOPF worker; all, every one of them.

    A station's downloads run on their own queue, whose worker slots are the station's concurrency limit
    (and whose server-side rate limit is its requests-per-minute cap), whatever the number of requests.
    """
    stages, processes = role in ("staging", "all"), role in ("processing", "all")
    queue = task_queue or settings.worker.task_queue
    common: dict[str, Any] = {
        "interceptors": [ErrorTranslationInterceptor()],
        # Cancels reach activities only on a heartbeat response: keep that delay short for operators.
        "max_heartbeat_throttle_interval": timedelta(seconds=2),
        "graceful_shutdown_timeout": timedelta(seconds=10),
    }
    workers = []
    if stages:
        workers.append(
            Worker(
                client,
                task_queue=queue,
                workflows=WORKFLOWS + (extra_workflows or []),
                activities=activity_fns,
                max_concurrent_activities=settings.worker.max_concurrent_activities,
                **common,
            )
        )
    # What a download queue runs: downloads, one file at a time per activity (a batch streams its files in turn).
    stream = [fn for fn in activity_fns if getattr(fn, "__name__", "") in ("stream_asset", "transfer_batch")]
    # EOPF runs have a queue of their own, with few slots: a burst of processing never starves staging.
    processor = [fn for fn in activity_fns if getattr(fn, "__name__", "") == "run_processor"]
    if processes:
        workers.append(
            Worker(
                client,
                task_queue=processor_task_queue(queue),
                activities=processor,
                max_concurrent_activities=settings.processor.max_concurrent_runs,
                **common,
            )
        )
    for station in settings.station_registry().stations.values() if stages else []:
        rpm = station.max_requests_per_minute
        workers.append(
            Worker(
                client,
                task_queue=download_task_queue(queue, station.name),
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


async def run(settings: Settings, role: WorkerRole = "all") -> None:
    """Connect, poll the role's queues until SIGTERM or SIGINT, and report it all on the health endpoint."""
    settings.station_registry()  # a stations file that cannot be used stops the worker now, in one line
    configure_tracing(settings.telemetry)
    health = Health(role=role)
    with serving(health, settings.worker.health_host, settings.worker.health_port):
        health.started = True
        client = await connect(settings.temporal)
        health.connected = True
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if role != "staging":
            # A worker of this machine killed before (SIGKILL, OOM) could not remove its EOPF run folders.
            await asyncio.to_thread(remove_abandoned_run_folders)
        try:
            async with activities(settings) as fns, running_workers(client, settings, fns, role=role) as workers:
                health.task_queues = [worker.task_queue for worker in workers]
                # `stack up` and the crash tests wait for this line (stack.services.WORKER_READY_MARKER).
                log.info(
                    "Worker started (%s) on %s at %s", role, ", ".join(health.task_queues), settings.temporal.address
                )
                await _watch(client, workers, health, stop)
        except RuntimeError as err:
            if "validation failed" not in str(err):
                raise
            # The pollers check the namespace first: a wrong or unauthorised namespace ends here.
            raise connection_error(settings.temporal, err, "cannot poll") from err
        health.polling = False
    log.info("Worker stopped")


async def _watch(client: Client, workers: list[Worker], health: Health, stop: asyncio.Event) -> None:
    """Until `stop`: keep `health` up to date (the frontend answers, every poller runs)."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(client.workflow_service.get_system_info(GetSystemInfoRequest()), 5)
            health.connected = True
        except Exception as err:  # any failure of the check means not ready; the pollers retry on their own
            if health.connected:
                log.warning("Temporal at %s does not answer: %s", client.service_client.config.target_host, err)
            health.connected = False
        if any(worker.is_shutdown for worker in workers):
            # The worker's own error follows from the `async with` of the workers.
            health.failed, health.polling = True, False
            return
        health.polling = all(worker.is_running for worker in workers)
        # Soon after start (pollers validate the namespace first), then every CHECK_INTERVAL_S.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), CHECK_INTERVAL_S if health.polling else 0.2)


def main(role: WorkerRole = "all") -> None:
    """Run a worker of `role` with the configuration from the environment; connection problems are one line."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keep_large_buffers()
    try:
        asyncio.run(run(Settings.load(), role))
    except TemporalConnectionError as err:
        log.error("%s", err)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
