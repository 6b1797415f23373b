"""`rs-ondemand bench scale`: how requests grow in history, and many DPR requests on one worker.

Everything runs on a worker of the bench's own (this process, its own task queue, the real workflows and
activities) against the embedded stack:

* **CADIP session** — a generated session of `session_chunks` chunk files of 1 KiB (tiny on purpose: this is
  about orchestration, not bytes) is added to the station simulator and staged by `OnDemandCadipStaging`.
* **PRIP window** — `prip_products` generated products of 1 KiB, all valid over one window, staged by
  `OnDemandPripStaging` (one `Staging` child per page of 100 products).

  For both, every history of the request is fetched (the workflow, its children, theirs) and counted: events
  and bytes of all together, the largest history, the largest single event, against Temporal's limits. The
  download queues get 16 slots (tiny files: otherwise the wall time is only the 4 default slots' round trips).

* **DPR** — the sample CADIP session and its restituted orbit are staged first; one `DprProcessing` request
  (the demo processor) runs alone to warm up and one more alone as the baseline of the same run; then
  `dpr_requests` requests start together, each with an output collection of its own, and the bench waits for
  them all. Reported: wall time, per-request p50/p95 (start request → result), whether every request
  published its product (checked in the catalog), and the speed-up over running them one at a time. EOPF runs
  on a Dask cluster the bench starts (`dask scheduler` + `dask worker`, 2 processes x 1 thread, from the EOPF
  environment) under the label `bench-dask`: a LocalCluster per run (`--dask local`) would start 2 more
  processes per request. The worker runs as many EOPF processes at once as configured
  (`RS_EOPF_MAX_CONCURRENT_RUNS`); the other requests wait in its processor queue. A request that fails and
  fails is counted as not published, with its error. Runs are forks of the worker's warm EOPF runner
  (`RS_EOPF_WARM_RUNNER`, the default); with `dpr_cold_baseline`, the same part runs again on a second worker
  whose runs are new `eopf` processes (as before the warm runner), for the ratio of the two in one run.

Nobody is there to retry a failed step: the bench's requests wait at most 1 s for an operator
(`options.operator_wait_limit_s`), then fail and clean up, instead of keeping the bench waiting.

Everything a part writes (catalog collections and items, S3 objects, checkpoints) is removed after it.

Longer than our ~400-line guide: the three parts share one worker, one stack and one cleanup (`_Scale`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx
from temporalio.client import Client, WorkflowFailureError

from rs_ondemand.bench._common import (
    NO_OPERATOR,
    TEMPORAL_LIMITS,
    HistoryStats,
    Log,
    StackTarget,
    bench_worker,
    delete_collection,
    delete_staged,
    embedded_stack,
    gather_all,
    machine_now,
    percentile,
    request_histories,
    timed_result,
)
from rs_ondemand.bench._proc import RssSampler
from rs_ondemand.bench.staging import BenchError, _s3_client
from rs_ondemand.client import connect
from rs_ondemand.config import Settings
from rs_ondemand.models.dpr import DprProcessIn, DprProcessResult
from rs_ondemand.models.processor_run import AddressDaskCluster
from rs_ondemand.models.staging import (
    AuxipStagingInput,
    CadipStagingInput,
    CadipStagingResult,
    PripStagingInput,
    WindowStagingResult,
)
from rs_ondemand.names import AUXIP_STAGING, CADIP_STAGING, DPR_PROCESSING, PRIP_STAGING
from rs_ondemand.stack.ports import free_port, is_listening
from rs_ondemand.starter.samples import SAMPLE_END, SAMPLE_SESSION, SAMPLE_START, demo_dpr_request

DEFAULT_SESSION_CHUNKS = 1000
DEFAULT_PRIP_PRODUCTS = 10_000
DEFAULT_DPR_REQUESTS = 20
FILE_BYTES = 1024
"""Size of every generated chunk file and product."""
DOWNLOAD_SLOTS = 16
"""Download slots of the CADIP and PRIP queues during the bench (the default is 4)."""
OWNER = "bench"
DASK_LABEL = "bench-dask"
DASK_WORKERS = 2
PRIP_EPOCH = datetime(2032, 1, 1, tzinfo=UTC)
"""Generated PRIP products start here (after the seeded catalogue and the tests' products)."""
PRIP_WINDOW = (PRIP_EPOCH + timedelta(days=1), PRIP_EPOCH + timedelta(days=2))
STAGING_TIMEOUT_BASE_S = 300.0
STAGING_TIMEOUT_PER_FILE_S = 0.5
DPR_TIMEOUT_BASE_S = 600.0
DPR_TIMEOUT_PER_REQUEST_S = 60.0
DASK_START_TIMEOUT_S = 120.0

DaskKind = Literal["address", "local"]


def session_id_for(chunks: int) -> str:
    """A session id of the real shape (S1A_ + 20 digits) per chunk count, so a rerun reuses the session."""
    return f"S1A_2098{chunks:016d}"


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


@contextmanager
def address_dask_cluster(eopf: Path, log: Log) -> Iterator[str]:
    """A `dask scheduler` and a `dask worker` (2 processes x 1 thread) from the EOPF environment, on loopback;
    stopped (process groups) on exit. Yields the scheduler's address."""
    dask = eopf.with_name("dask")
    if not dask.is_file():
        raise BenchError(f"no dask command beside {eopf} (run scripts/setup-eopf)")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    workdir = Path(tempfile.mkdtemp(prefix="rs-bench-dask-"))
    log_path = workdir / "dask.log"
    procs: list[subprocess.Popen[bytes]] = []
    guards: list[subprocess.Popen[bytes]] = []
    with log_path.open("wb") as output:

        def spawn(*args: str) -> None:
            proc = subprocess.Popen(
                [str(dask), *args], stdout=output, stderr=subprocess.STDOUT, start_new_session=True, cwd=workdir
            )
            procs.append(proc)
            guards.append(_orphan_guard(proc.pid, workdir))

        try:
            log(f"starting a Dask scheduler at {address} and {DASK_WORKERS} Dask workers")
            spawn("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
            _wait_for(lambda: is_listening(port), procs, log_path, "the Dask scheduler to listen")
            spawn(
                "worker", address, "--nworkers", str(DASK_WORKERS), "--nthreads", "1", "--host", "127.0.0.1",
                "--no-dashboard",
            )  # fmt: skip
            _wait_for(
                lambda: log_path.read_text(errors="replace").count("Registered to:") >= DASK_WORKERS,
                procs,
                log_path,
                "the Dask workers to register",
            )
            yield address
        finally:
            stop_process_groups(procs, grace_s=15)
            for guard in guards:
                guard.kill()
                guard.wait()
            shutil.rmtree(workdir, ignore_errors=True)


def stop_process_groups(procs: Sequence[subprocess.Popen[Any]], grace_s: float) -> None:
    """Stop the process group of each of `procs` (each started with `start_new_session`), the last started first:
    SIGTERM, then SIGKILL to a group whose leader has not exited within `grace_s`."""
    for proc in reversed(procs):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


GUARD = """
import os, shutil, signal, sys, time
owner, pgid, workdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def alive(kill, target):
    try:
        kill(target, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
while alive(os.kill, owner):
    time.sleep(2)
for sig in (signal.SIGTERM, signal.SIGKILL):
    if alive(os.killpg, pgid):
        os.killpg(pgid, sig)
    for _ in range(50):
        if not alive(os.killpg, pgid):
            break
        time.sleep(0.2)
shutil.rmtree(workdir, ignore_errors=True)
"""
"""The orphan guard: wait for the owner to die, then stop the process group (TERM, then KILL after 10 s)."""


def _orphan_guard(pgid: int, workdir: Path) -> subprocess.Popen[bytes]:
    """A detached watcher that stops process group `pgid` (and removes `workdir`) if this process dies without
    stopping it: a killed bench must not leave a Dask cluster behind. Killed by the orderly exit."""
    return subprocess.Popen(
        [sys.executable, "-c", GUARD, str(os.getpid()), str(pgid), str(workdir)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_for(ready: Any, procs: list[subprocess.Popen[bytes]], log_path: Path, what: str) -> None:
    deadline = time.monotonic() + DASK_START_TIMEOUT_S
    while not ready():
        if any(proc.poll() is not None for proc in procs) or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise BenchError(f"gave up waiting for {what}:\n{tail}")
        time.sleep(0.2)


async def _simulator(http: httpx.AsyncClient, url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(f"{url.rstrip('/')}{path}", json=body)
    if response.status_code not in (200, 201):
        raise BenchError(f"the simulator refused {path} ({response.status_code}): {response.text[:300]}")
    return dict(response.json())


class _Scale:
    """One run of the scale bench: its clients, its worker's task queue, and what it created."""

    def __init__(self, target: StackTarget, client: Client, http: httpx.AsyncClient, s3: Any, log: Log) -> None:
        self.settings = target.settings
        self.simulator_url = target.simulator_url or ""
        self.client, self.http, self.s3, self.log = client, http, s3, log
        self.run_id = uuid.uuid4().hex[:8]
        self.queue = f"bench-scale-{self.run_id}"

    def collection(self, name: str) -> str:
        return f"bench-{self.run_id}-{name}"

    def workflow_id(self, name: str) -> str:
        return f"bench-scale/{self.run_id}/{name}"

    async def clean(self, *collections: str) -> None:
        for collection in collections:
            await delete_collection(self.http, self.settings, collection)
            await delete_staged(self.s3, self.settings, OWNER, collection)

    async def _execute(self, kind: str, request: Any, workflow_id: str, result_type: Any, timeout_s: float) -> Any:
        began = time.perf_counter()
        handle = await self.client.start_workflow(
            kind, request, id=workflow_id, task_queue=self.queue, result_type=result_type
        )
        seconds, result = await timed_result(handle, began, timeout_s, kind)
        return seconds, result, handle.result_run_id

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
                seconds, result, run_id = await self._execute(
                    workflow, request_for(collection), workflow_id, result_type, _staging_timeout(files)
                )
            if problem := check(result):
                raise BenchError(problem)
            histories = await request_histories(self.client, workflow_id, run_id)
        finally:
            await self.clean(collection)
        self.log(f"{name.upper()}: {seconds:.1f} s, {histories.events} events in {histories.workflows} histories")
        figures = {"wall_s": round(seconds, 2), "histories": histories.as_dict(), "bench_process": _process(sampler)}
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
                "step_seconds": 1,
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

    async def _stage_dpr_inputs(self, session_collection: str, aux_collection: str) -> None:
        session = CadipStagingInput.for_session(OWNER, SAMPLE_SESSION, session_collection, options=NO_OPERATOR)
        orbit = AuxipStagingInput.for_window(
            OWNER, "AUX_RESORB", aux_collection, SAMPLE_START, SAMPLE_END, options=NO_OPERATOR
        )
        self.log(f"DPR: staging the sample session {SAMPLE_SESSION} and its orbit")
        timeout = _staging_timeout(100)
        (_, staged, _), (_, orbits, _) = await gather_all(
            [
                self._execute(CADIP_STAGING, session, self.workflow_id("dpr-session"), CadipStagingResult, timeout),
                self._execute(AUXIP_STAGING, orbit, self.workflow_id("dpr-orbit"), WindowStagingResult, timeout),
            ]
        )
        if staged.staging.items_staged + staged.staging.items_skipped != 1 or not orbits.items_found:
            raise BenchError("the sample session or its orbit could not be staged")

    def _dpr_request(self, session_collection: str, aux_collection: str, output: str, label: str) -> DprProcessIn:
        fields = demo_dpr_request(OWNER, SAMPLE_SESSION, session_collection)
        fields |= {
            "dask_cluster_label": label,
            "generated_product_to_collection_identifier": [{"DEMOL0": ["S01DEMOL0", output]}],
            "auxiliary_product_to_collection_identifier": {"*": aux_collection},
            "options": NO_OPERATOR,
        }
        return DprProcessIn.model_validate(fields)

    async def _dpr_run(
        self, session_collection: str, aux_collection: str, name: str, label: str, timeout_s: float
    ) -> _DprRun:
        """One request, from its start request to its result; its product looked up in the catalog."""
        output = self.collection(f"l0-{name}")
        request = self._dpr_request(session_collection, aux_collection, output, label)
        workflow_id = self.workflow_id(f"dpr-{name}")
        began = time.perf_counter()
        try:
            seconds, result, _ = await self._execute(DPR_PROCESSING, request, workflow_id, DprProcessResult, timeout_s)
        except WorkflowFailureError as failed:
            message = str(failed.cause or failed)
            self.log(f"DPR: {workflow_id} failed: {_first_line(message)}")
            return _DprRun(workflow_id, time.perf_counter() - began, False, message)
        published = result.processor_status == "completed" and len(result.published) == 1
        for item in result.published:
            url = f"{self.settings.catalog.url.rstrip('/')}/collections/{quote(item['collection'], safe='')}"
            found = await self.http.get(f"{url}/items/{quote(item['id'], safe='')}")
            published = published and found.status_code == 200 and item["collection"] == output
        error = None if published else f"not published: {result.processor_status} {result.published}"
        return _DprRun(workflow_id, seconds, published, error)

    async def dpr(self, requests: int, label: str, cluster: str) -> dict[str, Any]:
        """The DPR part on this bench's worker (see the module's docstring)."""
        session_collection, aux_collection = self.collection("session"), self.collection("aux")
        names = ["warmup", "single"] + [f"{i:02d}" for i in range(requests)]
        timeout = DPR_TIMEOUT_BASE_S + requests * DPR_TIMEOUT_PER_REQUEST_S
        try:
            await self._stage_dpr_inputs(session_collection, aux_collection)
            self.log("DPR: one request alone to warm up, then one alone as the baseline")
            first = await self._dpr_run(session_collection, aux_collection, "warmup", label, timeout)
            single = await self._dpr_run(session_collection, aux_collection, "single", label, timeout)
            self.log(f"DPR: alone {first.seconds:.1f} s (warm-up), {single.seconds:.1f} s; now {requests} at once")
            began = time.perf_counter()
            runs = await gather_all(
                [self._dpr_run(session_collection, aux_collection, name, label, timeout) for name in names[2:]]
            )
            wall = time.perf_counter() - began
            histories = [await request_histories(self.client, run.workflow_id) for run in runs]
        finally:
            await self.clean(session_collection, aux_collection, *(self.collection(f"l0-{n}") for n in names))
        seconds = [run.seconds for run in runs]
        largest = max(histories, key=lambda h: h.events)
        published = sum(run.published for run in runs)
        self.log(
            f"DPR: {requests} requests in {wall:.1f} s (p50 {percentile(seconds, 50):.1f} s), {published} published"
        )
        errors = [f"{run.workflow_id}: {_first_line(run.error)}" for run in (first, single, *runs) if run.error]
        return {
            "requests": requests,
            "published": published,
            "all_published": published == requests and first.published and single.published,
            "failed": requests - published,
            "errors": errors[:5],
            "wall_s": round(wall, 2),
            "per_request_s": {
                "p50": round(percentile(seconds, 50), 2),
                "p95": round(percentile(seconds, 95), 2),
                "min": round(min(seconds), 2),
                "max": round(max(seconds), 2),
            },
            "single_request_s": round(single.seconds, 2),
            "first_request_s": round(first.seconds, 2),
            "speedup_vs_one_at_a_time": round(requests * single.seconds / wall, 2) if wall > 0 else None,
            "processor": "demo",
            "dask_cluster": cluster,
            "eopf_runs_at_once": self.settings.processor.max_concurrent_runs,
            "eopf_start": "fork of the warm runner" if self.settings.processor.warm_runner else "new eopf process",
            "histories_of_largest_request": largest.as_dict(),
        }


@dataclass(frozen=True)
class _DprRun:
    workflow_id: str
    seconds: float
    """From the start request to the result (or to the moment it waited for an operator)."""
    published: bool
    error: str | None = None


async def dpr_with_cold_baseline(
    scale: _Scale, requests: int, label: str, cluster: str, cold_baseline: bool
) -> dict[str, Any]:
    """The DPR part on the bench's worker; with `cold_baseline`, then again on a worker of its own whose EOPF runs
    are new processes (`RS_EOPF_WARM_RUNNER=false`), nested as `cold_baseline` with the ratios of the two."""
    figures = await scale.dpr(requests, label, cluster)
    if not cold_baseline:
        return figures
    processor = scale.settings.processor.model_copy(update={"warm_runner": False})
    cold = _Scale(
        StackTarget(scale.settings.model_copy(update={"processor": processor}), scale.simulator_url),
        scale.client,
        scale.http,
        scale.s3,
        scale.log,
    )
    scale.log("DPR: the same again with a new eopf process per run (the cold baseline)")
    async with bench_worker(cold.client, cold.settings, cold.queue):
        baseline = await cold.dpr(requests, label, cluster)
    ratios = {
        "single_request_vs_cold": _ratio(figures["single_request_s"], baseline["single_request_s"]),
        "wall_vs_cold": _ratio(figures["wall_s"], baseline["wall_s"]),
    }
    return figures | ratios | {"cold_baseline": baseline}


def dpr_headline(dpr: dict[str, Any] | None) -> dict[str, Any]:
    """The DPR figures the report shows at its top level."""
    return {
        "dpr_single_request_s": dpr["single_request_s"] if dpr else None,
        "dpr_requests_wall_s": dpr["wall_s"] if dpr else None,
        "dpr_wall_vs_cold": dpr.get("wall_vs_cold") if dpr else None,
    }


def _ratio(ours: float, baseline: float) -> float | None:
    return round(ours / baseline, 3) if baseline > 0 else None


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else "?"


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
        address, label, cluster = None, "local", "local (a LocalCluster of 2 workers x 1 thread inside each EOPF run)"
        if dpr_requests and dask == "address":
            eopf = target.settings.processor.executable
            if not os.access(eopf, os.X_OK):
                raise BenchError(f"the EOPF environment is missing ({eopf}): run scripts/setup-eopf")
            address = stack.enter_context(address_dask_cluster(eopf, log))
            label, cluster = DASK_LABEL, f"address ({address}: dask scheduler + {DASK_WORKERS} workers x 1 thread)"
        settings = bench_settings(target.settings, address)
        client = await connect(settings.temporal)
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as http,
            _s3_client(settings) as s3,
        ):
            scale = _Scale(StackTarget(settings, target.simulator_url, target.server_pid), client, http, s3, log)
            async with bench_worker(client, settings, scale.queue):
                if session_chunks:
                    report["cadip_session"] = await scale.cadip_session(session_chunks)
                if prip_products:
                    report["prip_window"] = await scale.prip_window(prip_products)
                if dpr_requests:
                    report["dpr"] = await dpr_with_cold_baseline(scale, dpr_requests, label, cluster, dpr_cold_baseline)
    return (
        report
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
