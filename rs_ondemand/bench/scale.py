"""`rs-ondemand bench scale`: how requests grow in history, and many DPR requests on one worker.

Everything runs on a worker of the bench's own (this process, its own task queue, the real workflows and
activities) against the embedded stack:

* **CADIP session** — a generated session of `session_chunks` chunk files of 1 KiB (tiny on purpose: this is
  about orchestration, not bytes) is added to the station simulator and staged by `OnDemandCadipStaging`.
* **PRIP window** — `prip_products` generated products of 1 KiB, all valid over one window, staged by
  `OnDemandPripStaging` (one `Staging` child per page of 100 products).

  For both, every history of the request is fetched (the workflow, its children, theirs, every run continued
  as new, and the runs of the collection's `CollectionPublisher`) and counted: events and bytes of all
  together, the largest history, the largest single event, against Temporal's limits. The download queues get
  16 slots (tiny files: otherwise the wall time is only the 4 default slots' round trips). Each part reports
  the small files staged and published per second (`small_files_per_s`, start request → result) and this
  process's CPU per file (`worker_cpu_ms_per_file`: the worker, and the bench's client beside it).

* **DPR** — many `DprProcessing` requests of the demo processor at once on the worker, and one alone
  (`scale_dpr.py`, which describes it).

Nobody is there to retry a failed step: the bench's requests wait at most 1 s for an operator
(`options.operator_wait_limit_s`), then fail and clean up, instead of keeping the bench waiting.

Everything a part writes (catalog collections and items, S3 objects, checkpoints) is removed after it.

Longer than our ~400-line guide: the three parts share one worker, one stack and one cleanup (`_Scale`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from rs_ondemand.bench import BenchError
from rs_ondemand.bench._common import (
    NO_OPERATOR,
    TEMPORAL_LIMITS,
    HistoryStats,
    Log,
    StackTarget,
    bench_worker,
    embedded_stack,
    machine_now,
    request_histories,
)
from rs_ondemand.bench._proc import RssSampler
from rs_ondemand.bench._s3 import s3_client
from rs_ondemand.bench._scale_run import OWNER, ScaleRun
from rs_ondemand.bench.scale_dpr import DASK_LABEL, LOCAL_CLUSTER, DaskKind, dpr_cluster, dpr_headline, run_dpr_part
from rs_ondemand.client import connect
from rs_ondemand.config import Settings
from rs_ondemand.models.processor_run import AddressDaskCluster
from rs_ondemand.models.staging import (
    CadipStagingInput,
    CadipStagingResult,
    PripStagingInput,
    WindowStagingResult,
)
from rs_ondemand.names import CADIP_STAGING, COLLECTION_PUBLISHER, PRIP_STAGING, collection_publisher_id

DEFAULT_SESSION_CHUNKS = 1000
DEFAULT_PRIP_PRODUCTS = 10_000
DEFAULT_DPR_REQUESTS = 20
FILE_BYTES = 1024
"""Size of every generated chunk file and product."""
DOWNLOAD_SLOTS = 16
"""Download slots of the CADIP and PRIP queues during the bench (the default is 4)."""
PRIP_EPOCH = datetime(2032, 1, 1, tzinfo=UTC)
"""Generated PRIP products start here (after the seeded catalogue and the tests' products)."""
PRIP_WINDOW = (PRIP_EPOCH + timedelta(days=1), PRIP_EPOCH + timedelta(days=2))
TARGET_SMALL_FILES_PER_S = 100.0
TARGET_WORKER_CPU_MS_PER_FILE = 10.0
TARGET_LARGEST_HISTORY_EVENTS = 10_000
STAGING_TIMEOUT_BASE_S = 300.0
STAGING_TIMEOUT_PER_FILE_S = 0.5


def session_id_for(chunks: int) -> str:
    """A session id of the real shape (S1A_ + 20 digits) per chunk count, so a rerun reuses the session."""
    return f"S1A_2098{chunks:016d}"


def prip_step_seconds(products: int) -> float:
    """Seconds between the starts of the window's generated products. Each product must start before the window
    does, for its validity to cover the window (the search's `t_contains`): one a second up to a day of them,
    closer together beyond (a step of one second left all products past the 86,400th out of the window)."""
    return min(1.0, (PRIP_WINDOW[0] - PRIP_EPOCH).total_seconds() / products)


def prip_type_for(products: int) -> str:
    """A product type per window size, so windows of different sizes never share products."""
    return f"BENCH{products}"


def _staging_timeout(files: int) -> float:
    return STAGING_TIMEOUT_BASE_S + files * STAGING_TIMEOUT_PER_FILE_S


def bench_settings(settings: Settings, dask_address: str | None) -> Settings:
    """The stack's settings with more download slots for tiny files, and the bench's Dask cluster label."""
    for name in ("cadip", "prip"):
        settings = settings.with_station(name, max_concurrent_downloads=DOWNLOAD_SLOTS)
    update: dict[str, Any] = {}
    if dask_address is not None:
        clusters = {**settings.processor.dask_clusters, DASK_LABEL: AddressDaskCluster(address=dask_address)}
        update["processor"] = settings.processor.model_copy(update={"dask_clusters": clusters})
    return settings.model_copy(update=update)


async def _simulator(http: httpx.AsyncClient, url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(f"{url.rstrip('/')}{path}", json=body)
    if response.status_code not in (200, 201):
        raise BenchError(f"the simulator refused {path} ({response.status_code}): {response.text[:300]}")
    return dict(response.json())


class _Scale(ScaleRun):
    """The staging parts of one run of the scale bench."""

    async def _measured_staging(
        self,
        name: str,
        workflow: str,
        request_for: Callable[[str], Any],
        result_type: Any,
        files: int,
        check: Callable[[Any], str | None],
    ) -> tuple[Any, HistoryStats, dict[str, Any]]:
        """Run one staging request into a collection of its own (removed after), sampled; `check` says what is
        wrong with its result, if anything. The result, its histories, and the figures every part reports."""
        collection, workflow_id = self.collection(name), self.workflow_id(name)
        try:
            with RssSampler(os.getpid()) as sampler:
                seconds, result, run_id = await self.execute(
                    workflow, request_for(collection), workflow_id, result_type, _staging_timeout(files)
                )
            if problem := check(result):
                raise BenchError(problem)
            histories = await request_histories(self.client, workflow_id, run_id)
            await publisher_histories(self.client, collection, histories)
        finally:
            await self.clean(collection)
        self.log(f"{name.upper()}: {seconds:.1f} s, {histories.events} events in {histories.workflows} histories")
        figures = {
            "wall_s": round(seconds, 2),
            "small_files_per_s": round(files / seconds, 1),
            "worker_cpu_ms_per_file": round(sampler.cpu_s * 1000 / files, 2) if sampler.cpu_s is not None else None,
            "histories": histories.as_dict(),
            "bench_process": _process(sampler),
        }
        return result, histories, figures

    async def cadip_session(self, chunks: int) -> dict[str, Any]:
        session_id = session_id_for(chunks)
        added = await _simulator(
            self.http,
            self.simulator_url,
            "/_catalogue/sessions",
            {"session_id": session_id, "channels": 1, "chunks_per_channel": chunks, "chunk_size": FILE_BYTES},
        )
        if added.get("file_count") != chunks:
            raise BenchError(f"the simulator's session {session_id} has {added.get('file_count')} files")
        self.log(f"CADIP: staging session {session_id} ({chunks} chunks of {FILE_BYTES} bytes)")

        def check(result: CadipStagingResult) -> str | None:
            staged = result.staging
            if (staged.items_staged, staged.assets_staged) == (1, chunks):
                return None
            return f"CADIP staged {staged.items_staged} item(s), {staged.assets_staged} assets"

        result, histories, figures = await self._measured_staging(
            "cadip",
            CADIP_STAGING,
            lambda collection: CadipStagingInput.for_session(OWNER, session_id, collection, options=NO_OPERATOR),
            CadipStagingResult,
            chunks,
            check,
        )
        return {
            "session_id": session_id,
            "chunks": chunks,
            "chunk_bytes": FILE_BYTES,
            "items_staged": result.staging.items_staged,
            "assets_staged": result.staging.assets_staged,
            "events_per_chunk": round(histories.events / chunks, 2),
        } | figures

    async def prip_window(self, products: int) -> dict[str, Any]:
        product_type = prip_type_for(products)
        added = await _simulator(
            self.http,
            self.simulator_url,
            "/_catalogue/products",
            {
                "station": "prip",
                "product_type": product_type,
                "count": products,
                "start": PRIP_EPOCH.isoformat(),
                "step_seconds": prip_step_seconds(products),
                "validity_seconds": 10 * 86400,
                "size": FILE_BYTES,
            },
        )
        if len({product["Name"] for product in added["products"]}) != products:
            raise BenchError(f"the simulator did not generate {products} distinct {product_type} products")
        self.log(f"PRIP: staging a window of {products} {product_type} products of {FILE_BYTES} bytes")

        def check(result: WindowStagingResult) -> str | None:
            if (result.items_found, result.staging.items_staged) == (products, products):
                return None
            return f"PRIP found {result.items_found} products, staged {result.staging.items_staged}"

        result, histories, figures = await self._measured_staging(
            "prip",
            PRIP_STAGING,
            # Every download slot busy: a window has many result pages, whose transfers share the request's limit.
            lambda collection: PripStagingInput.for_window(
                OWNER,
                product_type,
                collection,
                *PRIP_WINDOW,
                prip_collection="prip",
                options={**NO_OPERATOR, "max_parallel_transfers": DOWNLOAD_SLOTS},
            ),
            WindowStagingResult,
            products,
            check,
        )
        return {
            "product_type": product_type,
            "products": products,
            "product_bytes": FILE_BYTES,
            "items_staged": result.staging.items_staged,
            "events_per_product": round(histories.events / products, 2),
        } | figures


async def publisher_histories(client: Client, collection: str, stats: HistoryStats) -> None:
    """Add to `stats` every run of the collection's `CollectionPublisher` (started by the request's activities,
    not as a child: `request_histories` does not reach it)."""
    publisher = collection_publisher_id(collection)
    async for run in client.list_workflows(f'WorkflowId = "{publisher}"'):
        history = await client.get_workflow_handle(publisher, run_id=run.run_id).fetch_history()
        stats.add(COLLECTION_PUBLISHER, list(history.events))


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The figures the targets are about: small files per second and CPU per file (the PRIP window's, where
    one file is one product to publish; else the session's), and each part's largest history."""
    part = report["prip_window"] or report["cadip_session"] or {}
    largest = {
        name: report[name]["histories"]["largest_history_events"] if report[name] else None
        for name in ("cadip_session", "prip_window")
    }
    return {
        "small_files_per_s": part.get("small_files_per_s"),
        "worker_cpu_ms_per_file": part.get("worker_cpu_ms_per_file"),
        "largest_history_events": largest,
        "targets": {
            "small_files_per_s": TARGET_SMALL_FILES_PER_S,
            "worker_cpu_ms_per_file": TARGET_WORKER_CPU_MS_PER_FILE,
            "largest_history_events_below": TARGET_LARGEST_HISTORY_EVENTS,
        },
    }


def _process(sampler: RssSampler) -> dict[str, Any]:
    """This process (worker and client) during a part: CPU seconds and peak RSS."""
    return {
        "cpu_s": round(sampler.cpu_s, 2) if sampler.cpu_s is not None else None,
        "peak_rss_mb": round(sampler.peak, 1) if sampler.peak is not None else None,
    }


async def run_scale_bench(
    target: StackTarget,
    *,
    session_chunks: int = DEFAULT_SESSION_CHUNKS,
    prip_products: int = DEFAULT_PRIP_PRODUCTS,
    dpr_requests: int = DEFAULT_DPR_REQUESTS,
    dask: DaskKind = "address",
    dpr_cold_baseline: bool = False,
    log: Log = lambda message: None,
) -> dict[str, Any]:
    """Measure on `target` with a worker of our own; a part whose size is 0 is skipped (null in the report)."""
    if min(session_chunks, prip_products, dpr_requests) < 0:
        raise ValueError("sizes cannot be negative")
    if (session_chunks or prip_products) and not target.simulator_url:
        raise BenchError("the stack has no station simulator")
    machine = machine_now()
    report: dict[str, Any] = {"cadip_session": None, "prip_window": None, "dpr": None}
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(dpr_cluster(target.settings, dask, log)) if dpr_requests else LOCAL_CLUSTER
        settings = bench_settings(target.settings, cluster.address)
        client = await connect(settings.temporal)
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as http,
            s3_client(settings) as s3,
        ):
            scale = _Scale(StackTarget(settings, target.simulator_url, target.server_pid), client, http, s3, log)
            async with bench_worker(client, settings, scale.queue):
                if session_chunks:
                    report["cadip_session"] = await scale.cadip_session(session_chunks)
                if prip_products:
                    report["prip_window"] = await scale.prip_window(prip_products)
                if dpr_requests:
                    report["dpr"] = await run_dpr_part(scale, dpr_requests, cluster, dpr_cold_baseline)
    return (
        report
        | headline(report)
        | dpr_headline(report["dpr"])
        | {
            "download_slots": DOWNLOAD_SLOTS,
            "temporal_limits": TEMPORAL_LIMITS,
            "machine": machine,
            "load_avg_after": machine_now().get("load_avg"),
        }
    )


def bench_scale(
    *,
    session_chunks: int = DEFAULT_SESSION_CHUNKS,
    prip_products: int = DEFAULT_PRIP_PRODUCTS,
    dpr_requests: int = DEFAULT_DPR_REQUESTS,
    dask: DaskKind = "address",
    dpr_cold_baseline: bool = False,
    state_dir: Path | None = None,
    log: Log = lambda message: None,
) -> dict[str, Any]:
    """Bring the embedded stack up (a running one is reused) and run the benchmark on it."""
    target = embedded_stack(state_dir, log)
    return asyncio.run(
        run_scale_bench(
            target,
            session_chunks=session_chunks,
            prip_products=prip_products,
            dpr_requests=dpr_requests,
            dask=dask,
            dpr_cold_baseline=dpr_cold_baseline,
            log=log,
        )
    )
