"""`rs-ondemand bench staging`: our CADIP staging workflow against a plain station → S3 copy of the same bytes.

One run: a generated CADIP session with a single chunk of `size_mib` MiB is added to the station simulator and
its checksum warmed up; then, alternately (ABBA order, `rounds` of each):

* **ours** — `OnDemandCadipStaging` end to end (start → result) into a fresh catalog collection, so nothing is
  skipped: search, prepare, streamed multipart upload with MD5 verification, read-back check, publication.
  The staged object's MD5 is then checked against the station's checksum (outside the timed window).
* **baseline** — the least a copy can do: an httpx streaming GET of the same file with the station's bearer
  token, uploaded with aioboto3 as sequential multipart parts of the same size, no checksum.

Throughputs are MiB/s (2^20 bytes per second). Rounds alternate ours and the baseline, so each round is a pair
measured under the same load; the headline ratio is the median of the per-round ratios (robust to one lucky or
unlucky run on a shared machine), and the best-of-each-side ratio is reported beside it.
During our rounds the worker process's VmRSS is sampled every 0.2 s (plus the kernel's peak mark, reset first).
Everything a round writes (S3 objects, manifests, the catalog item and collection) is removed after it, since
the embedded S3 (moto) keeps objects in memory.

The baseline and the station's session are in `staging_baseline`; this module runs the rounds and reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from rs_ondemand.bench import BenchError
from rs_ondemand.bench._proc import MIB, RssSampler, machine
from rs_ondemand.bench._s3 import delete_prefix, object_md5, s3_client
from rs_ondemand.bench.staging_baseline import (
    CADIP_COLLECTION,
    StationFile,
    baseline_copy,
    md5_floor_cpu_s,
    prepare_session,
)
from rs_ondemand.client import connect
from rs_ondemand.config import Settings
from rs_ondemand.models.staging import CadipStagingInput, CadipStagingResult
from rs_ondemand.names import CADIP_STAGING

DEFAULT_SIZE_MIB = 1024
DEFAULT_ROUNDS = 2
TARGET_RATIO = 0.95
"""Ours must reach 95 % of the plain copy's throughput."""
TARGET_CPU_VS_MD5 = 2.0
"""Our worker's CPU per GiB may be at most this many times the MD5 floor's (hashing the bytes is the least a
verified copy must do)."""
TARGET_RSS_GROWTH_MB = 256
"""The worker may grow by at most this many MiB while staging (whatever the file size)."""
OWNER = "bench"
SCRATCH_PREFIX = "_bench-scratch/"
HTTP_TIMEOUT = httpx.Timeout(60.0)
RUN_TIMEOUT_BASE_S = 120.0
RUN_TIMEOUT_MIN_MIB_S = 1.0
"""A run slower than this (plus the base) counts as stuck."""
STUCK_POLL_S = 5.0
STUCK_WORKFLOW_TASK_ATTEMPTS = 3
"""A workflow task failing this often means the worker cannot run our code: give up instead of waiting."""

Log = Callable[[str], None]
StagedHook = Callable[[str, str], Awaitable[None]]
"""Called with (bucket, key) of the staged object after each of our rounds, before its cleanup."""


@dataclass(frozen=True)
class BenchTarget:
    """Where to run: the stack's settings, the simulator's root, and the worker serving `task_queue`."""

    settings: Settings
    simulator_url: str
    worker_pid: int
    """Process whose RSS is sampled: the worker that runs the staging activities."""
    task_queue: str | None = None
    """Default: the configured task queue (the stack worker's)."""


@dataclass
class _Rounds:
    ours_s: list[float] = field(default_factory=list)
    baseline_s: list[float] = field(default_factory=list)
    baseline_cpu_s: list[float] = field(default_factory=list)
    md5_floor_cpu_s: list[float] = field(default_factory=list)
    samplers: list[RssSampler] = field(default_factory=list)


def session_id_for(size_mib: int) -> str:
    """A session id of the real shape (S1A_ + 20 digits) per size, so a rerun reuses the simulator's session."""
    return f"S1A_2099{size_mib:016d}"


def _run_timeout_s(size: int) -> float:
    """How long one of our runs may take before the bench gives up (a stuck worker must not hang it)."""
    return RUN_TIMEOUT_BASE_S + size / MIB / RUN_TIMEOUT_MIN_MIB_S


def _per_gib(seconds: float | None, size: int) -> float | None:
    return round(seconds * (1 << 30) / size, 2) if seconds is not None else None


def _mib_s(size: int, seconds: float) -> float:
    return size / MIB / seconds if seconds > 0 else 0.0


async def _cleanup_ours(
    http: httpx.AsyncClient, s3: Any, settings: Settings, collection: str, item_id: str, workflow_id: str
) -> None:
    """Remove what one of our rounds wrote: staged objects, manifests, checkpoints, catalog item, collection."""
    bucket, work = settings.s3.rs_bucket, settings.s3.rs_work_bucket
    await delete_prefix(s3, bucket, f"{OWNER}/{collection}/")
    await delete_prefix(s3, work, f"requests/{workflow_id}/")
    await delete_prefix(s3, work, f"transfers/{bucket}/{OWNER}/{collection}/")
    catalog = settings.catalog.url.rstrip("/")
    collection_path = f"{catalog}/collections/{quote(collection, safe='')}"
    for url in (f"{collection_path}/items/{quote(item_id, safe='')}", collection_path):
        with contextlib.suppress(httpx.HTTPError):
            await http.delete(url)


async def _fail_if_stuck(client: Any, workflow_id: str) -> None:
    """Raise BenchError when the workflow or one of its children keeps failing its workflow task.

    That is how a worker whose code no longer imports (e.g. a stack worker older than the tree: the workflow
    sandbox re-imports workflow modules from disk) shows: the request stays Running, nothing happens.
    """
    while True:
        await asyncio.sleep(STUCK_POLL_S)
        try:
            described = await client.get_workflow_handle(workflow_id).describe()
            runs = [(workflow_id, described)]
            for child in described.raw_description.pending_children:
                runs.append((child.workflow_id, await client.get_workflow_handle(child.workflow_id).describe()))
        except Exception:  # a transient RPC failure, or the run just closed: look again later
            continue
        for run_id, run in runs:
            attempt = run.raw_description.pending_workflow_task.attempt
            if attempt >= STUCK_WORKFLOW_TASK_ATTEMPTS:
                raise BenchError(
                    f"the workflow task of {run_id} failed {attempt - 1} times: the worker cannot run it "
                    "(restart a stack worker older than the code: rs-ondemand stack down && rs-ondemand stack up; "
                    "see its log)"
                )


async def _ours(
    client: Any, task_queue: str, source: StationFile, collection: str, workflow_id: str
) -> tuple[float, CadipStagingResult]:
    request = CadipStagingInput.for_session(OWNER, source.session_id, collection, cadip_collection=CADIP_COLLECTION)
    began = time.perf_counter()
    handle = await client.start_workflow(
        CADIP_STAGING, request, id=workflow_id, task_queue=task_queue, result_type=CadipStagingResult
    )
    watcher = asyncio.create_task(_fail_if_stuck(client, workflow_id))
    outcome = asyncio.ensure_future(handle.result())
    try:
        async with asyncio.timeout(_run_timeout_s(source.size)):
            await asyncio.wait((watcher, outcome), return_when=asyncio.FIRST_COMPLETED)
        seconds = time.perf_counter() - began
        if watcher.done():
            watcher.result()  # raises the BenchError that stopped it
        result = outcome.result()  # or the workflow's failure
    except BaseException as err:
        with contextlib.suppress(Exception):
            await handle.terminate("benchmark interrupted")
        if isinstance(err, TimeoutError):
            raise BenchError(
                f"our workflow {workflow_id} did not finish in {_run_timeout_s(source.size):.0f} s "
                "(is the worker on its task queue healthy? see its log)"
            ) from err
        raise
    finally:
        for task in (watcher, outcome):
            task.cancel()
        await asyncio.gather(watcher, outcome, return_exceptions=True)
    return seconds, result


async def run_staging_bench(
    target: BenchTarget,
    *,
    size_mib: int = DEFAULT_SIZE_MIB,
    rounds: int = DEFAULT_ROUNDS,
    log: Log = lambda message: None,
    on_staged: StagedHook | None = None,
) -> dict[str, Any]:
    """Measure ours and the baseline `rounds` times each on the stack of `target`; returns the report."""
    if size_mib < 1 or rounds < 1:
        raise BenchError("--size-mib and --rounds must be at least 1")
    settings = target.settings
    size = size_mib * MIB
    task_queue = target.task_queue or settings.worker.task_queue
    run_id = uuid.uuid4().hex[:8]
    runs = _Rounds()
    async with (
        httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=httpx.Limits(max_connections=20)) as http,
        s3_client(settings) as s3,
    ):
        log(f"preparing a {size_mib} MiB session on the station simulator (first time: hashing it)")
        source = await prepare_session(http, settings, target.simulator_url, size, session_id_for(size_mib))
        client = await connect(settings.temporal)

        async def ours(round_: int) -> None:
            collection = f"bench-{run_id}-{round_}"
            workflow_id = f"bench-staging/{run_id}/{round_}"
            key = f"{OWNER}/{collection}/{source.session_id}/{source.name}"
            try:
                sampler = RssSampler(target.worker_pid)
                with sampler:
                    seconds, result = await _ours(client, task_queue, source, collection, workflow_id)
                runs.samplers.append(sampler)
                staging = result.staging
                if staging.items_staged != 1 or staging.bytes_staged != size:
                    raise BenchError(f"our run staged {staging.items_staged} item(s), {staging.bytes_staged} bytes")
                runs.ours_s.append(seconds)
                md5 = await object_md5(s3, settings.s3.rs_bucket, key)
                if md5 != source.md5:
                    raise BenchError(f"staged object MD5 {md5} differs from the station's {source.md5}")
                if on_staged is not None:
                    await on_staged(settings.s3.rs_bucket, key)
                log(
                    f"round {round_ + 1}/{rounds} ours:     {_mib_s(size, seconds):8.1f} MiB/s "
                    f"({seconds:.1f} s, worker RSS {sampler.before or 0:.0f} → peak {sampler.peak or 0:.0f} MiB)"
                )
            finally:
                await _cleanup_ours(http, s3, settings, collection, source.session_id, workflow_id)

        async def baseline(round_: int) -> None:
            key = f"{SCRATCH_PREFIX}{run_id}/{round_}/{source.name}"
            try:
                cpu_before = time.process_time()
                seconds = await baseline_copy(http, s3, settings, source, settings.s3.rs_bucket, key)
                runs.baseline_cpu_s.append(time.process_time() - cpu_before)
                runs.baseline_s.append(seconds)
                runs.md5_floor_cpu_s.append(md5_floor_cpu_s(size))
                log(f"round {round_ + 1}/{rounds} baseline: {_mib_s(size, seconds):8.1f} MiB/s ({seconds:.1f} s)")
            finally:
                await delete_prefix(s3, settings.s3.rs_bucket, f"{SCRATCH_PREFIX}{run_id}/{round_}/")

        for round_ in range(rounds):
            # ABBA: neither side always runs first (first runs pay cold caches and allocator growth).
            order = (baseline, ours) if round_ % 2 == 0 else (ours, baseline)
            for step in order:
                await step(round_)

    return report(size_mib, rounds, runs, settings.s3.rs_s3_part_size)


def report(size_mib: int, rounds: int, runs: _Rounds, part_size: int) -> dict[str, Any]:
    size = size_mib * MIB
    ours_mb_s = _mib_s(size, statistics.median(runs.ours_s))
    baseline_mb_s = _mib_s(size, statistics.median(runs.baseline_s))
    # Same bytes each way, so a round's throughput ratio is baseline time over our time.
    ratio = statistics.median(b / o for o, b in zip(runs.ours_s, runs.baseline_s, strict=True) if o)
    best_ratio = min(runs.baseline_s) / min(runs.ours_s) if min(runs.ours_s) else 0.0
    before = runs.samplers[0].before or 0.0
    peak = max((s.peak or 0.0) for s in runs.samplers)
    growth = max(0.0, peak - before)
    worker_cpu = _per_gib(min((s.cpu_s for s in runs.samplers if s.cpu_s is not None), default=None), size)
    md5_floor = _per_gib(min(runs.md5_floor_cpu_s, default=None), size)
    cpu_met = worker_cpu is not None and bool(md5_floor) and worker_cpu <= TARGET_CPU_VS_MD5 * (md5_floor or 0)
    met = ratio >= TARGET_RATIO and growth <= TARGET_RSS_GROWTH_MB and cpu_met
    return {
        "size_mib": size_mib,
        "rounds": rounds,
        "ours_mb_s": round(ours_mb_s, 1),
        "baseline_mb_s": round(baseline_mb_s, 1),
        "ratio": round(ratio, 3),
        "statistic": "median of per-round ratios (rounds alternate ours/baseline)",
        "best_of_each_side_ratio": round(best_ratio, 3),
        "peak_rss_mb": round(peak, 1),
        "rss_growth_mb": round(growth, 1),
        "part_size_mib": round(part_size / MIB, 2),
        "worker_cpu_s_per_gib": worker_cpu,
        "md5_floor_cpu_s_per_gib": md5_floor,
        "machine": machine(),
        "targets": {
            "ratio": TARGET_RATIO,
            "rss_growth_mb": TARGET_RSS_GROWTH_MB,
            "worker_cpu_vs_md5_floor": TARGET_CPU_VS_MD5,
        },
        "met": met,
        # Details behind the headline numbers.
        "units": "MiB and MiB/s (2^20 bytes)",
        "ours_runs_mb_s": [round(_mib_s(size, s), 1) for s in runs.ours_s],
        "baseline_runs_mb_s": [round(_mib_s(size, s), 1) for s in runs.baseline_s],
        "rss_before_mb": round(before, 1),
        # CPU per GiB is far steadier than throughput on a shared machine: where our worker spends more.
        "cpu_s_per_gib": {
            "ours_worker": worker_cpu,
            "baseline": _per_gib(min(runs.baseline_cpu_s, default=None), size),
        },
        "md5_verified": True,  # every staged object was read back and matched (else BenchError)
    }


def bench_staging(
    *,
    size_mib: int = DEFAULT_SIZE_MIB,
    rounds: int = DEFAULT_ROUNDS,
    state_dir: Path | None = None,
    log: Log = lambda message: None,
) -> dict[str, Any]:
    """Bring the embedded stack up (a running one is reused, worker included) and run the benchmark on it."""
    from rs_ondemand.stack import Stack, default_state_dir

    info = Stack(state_dir or default_state_dir(), notify=log).up()
    worker = info.services.get("worker")
    if worker is None or worker.pid is None:
        raise BenchError("the embedded stack has no running worker")
    simulator_url = info.env.get("SIMULATOR_URL")
    if not simulator_url:
        raise BenchError("the embedded stack has no station simulator")
    target = BenchTarget(settings=Settings.load(info.env_file), simulator_url=simulator_url, worker_pid=worker.pid)
    return asyncio.run(run_staging_bench(target, size_mib=size_mib, rounds=rounds, log=log))
