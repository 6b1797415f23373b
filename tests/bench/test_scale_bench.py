"""`rs-ondemand bench scale`: a scaled-down run on the test stack (shape and sanity, no timing threshold) and the
command's options and output."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from typer.testing import CliRunner

from rs_ondemand.bench._common import StackTarget
from rs_ondemand.bench.scale import PRIP_EPOCH, PRIP_WINDOW, prip_step_seconds, run_scale_bench
from rs_ondemand.config import Settings
from rs_ondemand.names import COLLECTION_PUBLISHER
from rs_ondemand.stack import StackInfo
from rs_ondemand.starter.cli import app
from rs_ondemand.workflows import _limits
from tests.support.storage import keys_under

HISTORY_KEYS = {
    "workflows",
    "events",
    "bytes",
    "largest_history_events",
    "largest_history_bytes",
    "largest_history_type",
    "largest_event_bytes",
    "largest_event_type",
}


def check_histories(histories: dict[str, Any], workflows: int) -> None:
    assert set(histories) == HISTORY_KEYS
    assert histories["workflows"] == workflows
    assert histories["events"] >= histories["largest_history_events"] > 0
    assert histories["bytes"] >= histories["largest_history_bytes"] >= histories["largest_event_bytes"] > 0
    assert histories["largest_history_type"] and histories["largest_event_type"].startswith("EVENT_TYPE_")


async def test_scale_bench_on_the_test_stack(
    settings: Settings,
    stack: StackInfo,
    stack_env: dict[str, str],
    s3: Any,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """50 chunks, 200 products, 2 DPR requests at once (on the Dask cluster the bench starts). The split points
    are scaled down (20 assets per `Staging` history, one page per `StagingPages` run): the bench counts the
    parts and the continued runs as it would at full size."""
    monkeypatch.setattr(_limits, "ASSETS_PER_CHILD", 20)
    monkeypatch.setattr(_limits, "PAGES_PER_RUN", 1)
    target = StackTarget(settings=settings, simulator_url=stack_env["SIMULATOR_URL"])
    result = await run_scale_bench(target, session_chunks=50, prip_products=200, dpr_requests=2)
    json.dumps(result)  # serialisable as the command prints it

    cadip = result["cadip_session"]
    assert (cadip["chunks"], cadip["items_staged"], cadip["assets_staged"]) == (50, 1, 50)
    # The request, its Staging child (the session), three parts of 20, 20 and 10 chunks, the collection's publisher.
    check_histories(cadip["histories"], workflows=6)
    assert cadip["wall_s"] > 0 and cadip["events_per_chunk"] > 0

    prip = result["prip_window"]
    assert (prip["products"], prip["items_staged"]) == (200, 200)
    # The request, two runs of StagingPages (one page each), a Staging child per page with five parts of 20
    # products each, the publisher.
    check_histories(prip["histories"], workflows=1 + 2 + 2 * (1 + 5) + 1)
    assert prip["wall_s"] > 0 and prip["events_per_product"] > 0
    for part, files in ((cadip, 50), (prip, 200)):
        # wall_s is reported rounded to 0.01 s, small_files_per_s from the unrounded time
        assert part["small_files_per_s"] == pytest.approx(files / part["wall_s"], rel=0.01, abs=0.1)
        assert part["worker_cpu_ms_per_file"] == round(part["bench_process"]["cpu_s"] * 1000 / files, 2)
    assert (result["small_files_per_s"], result["worker_cpu_ms_per_file"]) == (
        prip["small_files_per_s"],
        prip["worker_cpu_ms_per_file"],
    )
    assert result["largest_history_events"] == {
        "cadip_session": cadip["histories"]["largest_history_events"],
        "prip_window": prip["histories"]["largest_history_events"],
    }
    assert result["targets"] == {
        "small_files_per_s": 100.0,
        "worker_cpu_ms_per_file": 10.0,
        "largest_history_events_below": 10_000,
    }

    dpr = result["dpr"]
    assert (dpr["requests"], dpr["published"], dpr["all_published"], dpr["failed"]) == (2, 2, True, 0), dpr["errors"]
    p = dpr["per_request_s"]
    assert 0 < p["min"] <= p["p50"] <= p["p95"] <= p["max"] <= dpr["wall_s"]
    assert dpr["single_request_s"] > 0 and dpr["first_request_s"] > 0 and dpr["speedup_vs_one_at_a_time"] > 0
    assert dpr["dask_cluster"].startswith("address (tcp://127.0.0.1:") and dpr["eopf_runs_at_once"] >= 1
    assert dpr["eopf_start"] == "fork of the warm runner"
    assert (result["dpr_single_request_s"], result["dpr_requests_wall_s"]) == (dpr["single_request_s"], dpr["wall_s"])
    assert "cold_baseline" not in dpr and result["dpr_wall_vs_cold"] is None  # only with dpr_cold_baseline
    # DprProcessing, one ProcessingUnit, and the Staging children of the unit's ADF.
    check_histories(dpr["histories_of_largest_request"], workflows=dpr["histories_of_largest_request"]["workflows"])
    assert dpr["histories_of_largest_request"]["workflows"] >= 2

    assert result["temporal_limits"]["history_events_max"] == 51_200
    assert result["download_slots"] == 16
    assert len(result["machine"]["load_avg"]) == 3

    # Nothing left behind: no catalog collection, staged object or checkpoint of the bench.
    async with httpx.AsyncClient(timeout=60) as http:
        collections = (await http.get(f"{settings.catalog.url}/collections")).json()["collections"]
    assert [c["id"] for c in collections if c["id"].startswith("bench-")] == []
    assert [k for k in keys_under(s3, settings.s3.rs_bucket, "bench/")] == []
    assert [k for k in keys_under(s3, settings.s3.rs_work_bucket) if "/bench/" in k or k.startswith("dpr/bench")] == []
    # Nor a collection's publisher still open on the bench's queue, which nobody polls any more.
    query = f'WorkflowType = "{COLLECTION_PUBLISHER}" AND ExecutionStatus = "Running"'
    assert [w.id async for w in client.list_workflows(query) if w.task_queue.startswith("bench-scale-")] == []


@pytest.mark.parametrize("products", [1, 1000, 86_400, 86_401, 100_000])
def test_every_generated_prip_product_starts_before_the_window(products: int) -> None:
    """The window's products are those whose validity covers it: the last one must start before it too."""
    last_start = PRIP_EPOCH + timedelta(seconds=prip_step_seconds(products) * (products - 1))
    assert last_start < PRIP_WINDOW[0]
    assert prip_step_seconds(products) == (1.0 if products <= 86_400 else 86_400 / products)


def test_scale_command_prints_one_json_object(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    fake = {"cadip_session": None, "prip_window": None, "dpr": None}

    def fake_bench(**kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs)
        kwargs["log"]("progress goes to stderr")
        return fake

    monkeypatch.setattr("rs_ondemand.bench.scale.bench_scale", fake_bench)
    args = ["bench", "scale", "--json", "--sessions-chunks", "50", "--prip-products", "0", "--dpr-requests", "2"]
    result = CliRunner().invoke(app, [*args, "--dask", "local"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == fake
    assert seen["session_chunks"] == 50 and seen["prip_products"] == 0 and seen["dpr_requests"] == 2
    assert seen["dask"] == "local" and seen["dpr_cold_baseline"] is False
    with_baseline = CliRunner().invoke(app, [*args, "--dpr-cold-baseline"])
    assert with_baseline.exit_code == 0, with_baseline.output
    assert seen["dpr_cold_baseline"] is True


def test_scale_command_defaults_and_bad_dask(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr("rs_ondemand.bench.scale.bench_scale", lambda **kw: seen.update(kw) or {})
    result = CliRunner().invoke(app, ["bench", "scale", "--json"])
    assert result.exit_code == 0, result.output
    assert (seen["session_chunks"], seen["prip_products"], seen["dpr_requests"]) == (1000, 10_000, 20)
    assert seen["dask"] == "address"
    sizes = ["--sessions-chunks", "10000", "--prip-products", "100000", "--dpr-requests", "0"]
    assert CliRunner().invoke(app, ["bench", "scale", "--json", *sizes]).exit_code == 0
    assert (seen["session_chunks"], seen["prip_products"], seen["dpr_requests"]) == (10_000, 100_000, 0)
    refused = CliRunner().invoke(app, ["bench", "scale", "--dask", "gateway"])
    assert refused.exit_code == 2


KILLED_BENCH = """
import os, signal, sys
from pathlib import Path
from rs_ondemand.bench.dask_cluster import address_dask_cluster
with address_dask_cluster(Path(sys.argv[1]), lambda message: None) as address:
    print(address, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # killed: no finally block runs
"""


def test_a_killed_bench_leaves_no_dask_cluster_behind(settings: Settings) -> None:
    eopf = settings.processor.executable
    ran = subprocess.run(
        [sys.executable, "-c", KILLED_BENCH, str(eopf)], capture_output=True, text=True, timeout=180, check=False
    )
    assert ran.returncode == -signal.SIGKILL, ran.stderr
    port = ran.stdout.strip().rsplit(":", 1)[1]
    deadline = time.monotonic() + 60
    while dask_processes(port) and time.monotonic() < deadline:
        time.sleep(1)
    assert dask_processes(port) == []


def dask_processes(port: str) -> list[str]:
    """Command lines of the live processes of the bench's Dask cluster on `port` (scheduler, worker, nannies)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if f":{port}" in argv or f"--port {port}" in argv or f"127.0.0.1:{port}".encode() in environ:
            found.append(argv)
    return found
