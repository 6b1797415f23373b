"""The DPR part of `rs-ondemand bench scale`: many `DprProcessing` requests at once on one worker.

The sample CADIP session and its restituted orbit are staged first; one request of the demo processor runs alone
to warm up (the worker's first run also starts its warm EOPF runner) and one more alone as the baseline of the
same run (`single_request_s`); then `requests` requests start together, each with an output collection of its
own, and the bench waits for them all. Reported: wall time, per-request p50/p95 (start request → result), whether
every request published its product (checked in the catalog), and the speed-up over running them one at a time.
A request that fails is counted as not published, with its error.

EOPF runs on a Dask cluster the bench starts (`dask scheduler` + `dask worker`, 2 processes x 1 thread, from the
EOPF environment) under the label `bench-dask`: a LocalCluster per run (`local`) would start 2 more processes per
request. The worker runs as many EOPF runs at once as configured (`RS_EOPF_MAX_CONCURRENT_RUNS`); the other
requests wait in its processor queue. Runs are forks of the worker's warm EOPF runner (`RS_EOPF_WARM_RUNNER`, the
default); with `cold_baseline`, the same part runs again on a second worker whose runs are new `eopf` processes,
for the ratio of the two measured in one run, under the same load.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from temporalio.client import WorkflowFailureError

from rs_ondemand.bench import BenchError
from rs_ondemand.bench._common import (
    NO_OPERATOR,
    Log,
    StackTarget,
    bench_worker,
    gather_all,
    percentile,
    request_histories,
)
from rs_ondemand.bench._scale_run import OWNER, ScaleRun
from rs_ondemand.bench.dask_cluster import DASK_WORKERS, address_dask_cluster
from rs_ondemand.config import Settings
from rs_ondemand.models.dpr import DprProcessIn, DprProcessResult
from rs_ondemand.models.staging import AuxipStagingInput, CadipStagingInput, CadipStagingResult, WindowStagingResult
from rs_ondemand.names import AUXIP_STAGING, CADIP_STAGING, DPR_PROCESSING
from rs_ondemand.starter.samples import SAMPLE_END, SAMPLE_SESSION, SAMPLE_START, demo_dpr_request

DASK_LABEL = "bench-dask"
INPUTS_TIMEOUT_S = 350.0
"""For staging the sample session and its orbit."""
DPR_TIMEOUT_BASE_S = 600.0
DPR_TIMEOUT_PER_REQUEST_S = 60.0

DaskKind = Literal["address", "local"]


@dataclass(frozen=True)
class DprCluster:
    """The Dask cluster the DPR requests name: its address (None: a LocalCluster per run), label and description."""

    address: str | None
    label: str
    description: str


LOCAL_CLUSTER = DprCluster(None, "local", "local (a LocalCluster of 2 workers x 1 thread inside each EOPF run)")


@contextmanager
def dpr_cluster(settings: Settings, kind: DaskKind, log: Log) -> Iterator[DprCluster]:
    """`address`: a Dask cluster of the bench's own, for the label `bench-dask` (stopped on exit); `local`: the
    stack's `local` label."""
    if kind == "local":
        yield LOCAL_CLUSTER
        return
    eopf = settings.processor.executable
    if not os.access(eopf, os.X_OK):
        raise BenchError(f"the EOPF environment is missing ({eopf}): run scripts/setup-eopf")
    with address_dask_cluster(eopf, log) as address:
        workers = f"dask scheduler + {DASK_WORKERS} workers x 1 thread"
        yield DprCluster(address, DASK_LABEL, f"address ({address}: {workers})")


@dataclass(frozen=True)
class _DprRun:
    workflow_id: str
    seconds: float
    """From the start request to the result (or to the moment it waited for an operator)."""
    published: bool
    error: str | None = None


class DprPart:
    """The DPR part on the worker of `run` (its task queue), with requests naming `cluster`."""

    def __init__(self, run: ScaleRun, cluster: DprCluster) -> None:
        self.run, self.cluster = run, cluster
        self.session_collection, self.aux_collection = run.collection("session"), run.collection("aux")

    async def _stage_inputs(self) -> None:
        run = self.run
        session = CadipStagingInput.for_session(OWNER, SAMPLE_SESSION, self.session_collection, options=NO_OPERATOR)
        orbit = AuxipStagingInput.for_window(
            OWNER, "AUX_RESORB", self.aux_collection, SAMPLE_START, SAMPLE_END, options=NO_OPERATOR
        )
        run.log(f"DPR: staging the sample session {SAMPLE_SESSION} and its orbit")
        timeout = INPUTS_TIMEOUT_S
        (_, staged, _), (_, orbits, _) = await gather_all(
            [
                run.execute(CADIP_STAGING, session, run.workflow_id("dpr-session"), CadipStagingResult, timeout),
                run.execute(AUXIP_STAGING, orbit, run.workflow_id("dpr-orbit"), WindowStagingResult, timeout),
            ]
        )
        if staged.staging.items_staged + staged.staging.items_skipped != 1 or not orbits.items_found:
            raise BenchError("the sample session or its orbit could not be staged")

    def _request(self, output: str) -> DprProcessIn:
        fields = demo_dpr_request(OWNER, SAMPLE_SESSION, self.session_collection)
        fields |= {
            "dask_cluster_label": self.cluster.label,
            "generated_product_to_collection_identifier": [{"DEMOL0": ["S01DEMOL0", output]}],
            "auxiliary_product_to_collection_identifier": {"*": self.aux_collection},
            "options": NO_OPERATOR,
        }
        return DprProcessIn.model_validate(fields)

    async def _one(self, name: str, timeout_s: float) -> _DprRun:
        """One request, from its start request to its result; its product looked up in the catalog."""
        run = self.run
        output = run.collection(f"l0-{name}")
        workflow_id = run.workflow_id(f"dpr-{name}")
        began = time.perf_counter()
        try:
            seconds, result, _ = await run.execute(
                DPR_PROCESSING, self._request(output), workflow_id, DprProcessResult, timeout_s
            )
        except WorkflowFailureError as failed:
            message = str(failed.cause or failed)
            run.log(f"DPR: {workflow_id} failed: {_first_line(message)}")
            return _DprRun(workflow_id, time.perf_counter() - began, False, message)
        published = result.processor_status == "completed" and len(result.published) == 1
        for item in result.published:
            url = f"{run.settings.catalog.url.rstrip('/')}/collections/{quote(item['collection'], safe='')}"
            found = await run.http.get(f"{url}/items/{quote(item['id'], safe='')}")
            published = published and found.status_code == 200 and item["collection"] == output
        error = None if published else f"not published: {result.processor_status} {result.published}"
        return _DprRun(workflow_id, seconds, published, error)

    async def measure(self, requests: int) -> dict[str, Any]:
        """Stage the inputs, run one request alone twice, then `requests` at once; remove everything after."""
        run = self.run
        names = ["warmup", "single"] + [f"{i:02d}" for i in range(requests)]
        timeout = DPR_TIMEOUT_BASE_S + requests * DPR_TIMEOUT_PER_REQUEST_S
        try:
            await self._stage_inputs()
            run.log("DPR: one request alone to warm up, then one alone as the baseline")
            first = await self._one("warmup", timeout)
            single = await self._one("single", timeout)
            run.log(f"DPR: alone {first.seconds:.1f} s (warm-up), {single.seconds:.1f} s; now {requests} at once")
            began = time.perf_counter()
            runs = await gather_all([self._one(name, timeout) for name in names[2:]])
            wall = time.perf_counter() - began
            histories = [await request_histories(run.client, one.workflow_id) for one in runs]
        finally:
            outputs = (run.collection(f"l0-{name}") for name in names)
            await run.clean(self.session_collection, self.aux_collection, *outputs)
        seconds = [one.seconds for one in runs]
        largest = max(histories, key=lambda h: h.events)
        published = sum(one.published for one in runs)
        run.log(
            f"DPR: {requests} requests in {wall:.1f} s (p50 {percentile(seconds, 50):.1f} s), {published} published"
        )
        errors = [f"{one.workflow_id}: {_first_line(one.error)}" for one in (first, single, *runs) if one.error]
        processor = run.settings.processor
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
            "dask_cluster": self.cluster.description,
            "eopf_runs_at_once": processor.max_concurrent_runs,
            "eopf_start": "fork of the warm runner" if processor.warm_runner else "new eopf process",
            "histories_of_largest_request": largest.as_dict(),
        }


async def run_dpr_part(run: ScaleRun, requests: int, cluster: DprCluster, cold_baseline: bool) -> dict[str, Any]:
    """The DPR part on the worker of `run`; with `cold_baseline`, then again on a worker of its own whose EOPF runs
    are new processes (`RS_EOPF_WARM_RUNNER=false`), nested as `cold_baseline` with the ratios of the two."""
    figures = await DprPart(run, cluster).measure(requests)
    if not cold_baseline:
        return figures
    processor = run.settings.processor.model_copy(update={"warm_runner": False})
    settings = run.settings.model_copy(update={"processor": processor})
    cold = ScaleRun(StackTarget(settings, run.simulator_url), run.client, run.http, run.s3, run.log)
    run.log("DPR: the same again with a new eopf process per run (the cold baseline)")
    async with bench_worker(cold.client, cold.settings, cold.queue):
        baseline = await DprPart(cold, cluster).measure(requests)
    ratios = {
        "single_request_vs_cold": _ratio(figures["single_request_s"], baseline["single_request_s"]),
        "wall_vs_cold": _ratio(figures["wall_s"], baseline["wall_s"]),
    }
    return figures | ratios | {"cold_baseline": baseline}


def dpr_headline(dpr: dict[str, Any] | None) -> dict[str, Any]:
    """The DPR figures the report shows at its top level (null when the part is skipped)."""
    return {
        "dpr_single_request_s": dpr["single_request_s"] if dpr else None,
        "dpr_requests_wall_s": dpr["wall_s"] if dpr else None,
        "dpr_wall_vs_cold": dpr.get("wall_vs_cold") if dpr else None,
    }


def _ratio(ours: float, baseline: float) -> float | None:
    return round(ours / baseline, 3) if baseline > 0 else None


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else "?"
