"""`rs-ondemand bench staging`: a smoke run on the test stack (tiny size, not a timing test) and the command."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from typing import Any

import httpx
import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker
from typer.testing import CliRunner

from rs_ondemand.bench import BenchError
from rs_ondemand.bench import staging as bench_staging
from rs_ondemand.bench.staging import BenchTarget, run_staging_bench, session_id_for
from rs_ondemand.config import Settings
from rs_ondemand.names import CADIP_STAGING
from rs_ondemand.starter.cli import app
from tests.support.storage import keys_under

KEYS = {
    "size_mib",
    "rounds",
    "ours_mb_s",
    "baseline_mb_s",
    "ratio",
    "peak_rss_mb",
    "rss_growth_mb",
    "part_size_mib",
    "worker_cpu_s_per_gib",
    "md5_floor_cpu_s_per_gib",
    "machine",
    "targets",
    "met",
}


async def station_md5(http: httpx.AsyncClient, settings: Settings, session_id: str) -> str:
    assert settings.cadip.url
    found = await http.post(f"{settings.cadip.url}/search", json={"ids": [session_id], "collections": ["cadip"]})
    (asset,) = found.json()["features"][0]["assets"].values()
    checksum = asset["file:checksum"]
    assert checksum.startswith("d50110")
    return str(checksum[len("d50110") :])


async def test_bench_smoke_on_the_test_stack(
    settings: Settings, stack_env: dict[str, str], task_queue: str, s3: Any
) -> None:
    """One round each of 16 MiB through the real workflow (in-process worker: this process's RSS is sampled)."""
    staged: list[tuple[str, str, str]] = []

    async def check_staged(bucket: str, key: str) -> None:
        def md5() -> str:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                return hashlib.md5(body.read(), usedforsecurity=False).hexdigest()
            finally:
                body.close()

        staged.append((bucket, key, await asyncio.to_thread(md5)))

    target = BenchTarget(
        settings=settings, simulator_url=stack_env["SIMULATOR_URL"], worker_pid=os.getpid(), task_queue=task_queue
    )
    result = await run_staging_bench(target, size_mib=16, rounds=1, on_staged=check_staged)

    assert set(result) >= KEYS
    assert (result["size_mib"], result["rounds"]) == (16, 1)
    for key in ("ours_mb_s", "baseline_mb_s", "ratio", "peak_rss_mb", "part_size_mib"):
        assert result[key] > 0, key
    assert result["rss_growth_mb"] >= 0
    assert result["peak_rss_mb"] >= result["rss_before_mb"] > 0
    assert result["part_size_mib"] == settings.s3.rs_s3_part_size / (1 << 20)
    assert result["targets"] == {"ratio": 0.95, "rss_growth_mb": 256, "worker_cpu_vs_md5_floor": 2.0}
    assert isinstance(result["met"], bool)
    assert set(result["machine"]) == {"cpus", "mem_gib", "python"}
    assert result["cpu_s_per_gib"]["ours_worker"] > 0 and result["cpu_s_per_gib"]["baseline"] > 0
    assert result["worker_cpu_s_per_gib"] == result["cpu_s_per_gib"]["ours_worker"]
    # This process hashes the bytes at least as fast as the worker stages them (which also hashes them).
    assert 0 < result["md5_floor_cpu_s_per_gib"] <= result["worker_cpu_s_per_gib"]
    json.dumps(result)  # serialisable as the command prints it

    # The staged object (checked before the bench removed it) is the station's file, bit for bit.
    ((bucket, key, md5),) = staged
    session = session_id_for(16)
    assert bucket == settings.s3.rs_bucket
    assert key.startswith("bench/") and f"/{session}/" in key
    async with httpx.AsyncClient(timeout=60) as http:
        assert md5 == await station_md5(http, settings, session)
        collections = (await http.get(f"{settings.catalog.url}/collections")).json()["collections"]

    # Nothing left behind: no objects, no uploads, no catalog collection of the bench.
    assert [k for k in keys_under(s3, settings.s3.rs_bucket) if k.startswith(("bench/", "_bench-scratch/"))] == []
    assert [k for k in keys_under(s3, settings.s3.rs_work_bucket) if "bench" in k] == []
    assert s3.list_multipart_uploads(Bucket=settings.s3.rs_bucket).get("Uploads", []) == []
    assert [c["id"] for c in collections if c["id"].startswith("bench-")] == []


def test_bench_command_prints_one_json_object(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--json` prints exactly the function's report on stdout and exits 0 even when targets are missed."""
    seen: dict[str, Any] = {}
    fake = {"size_mib": 8, "rounds": 3, "ratio": 0.5, "met": False}

    def fake_bench(**kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs)
        kwargs["log"]("progress goes to stderr")
        return fake

    monkeypatch.setattr("rs_ondemand.bench.staging.bench_staging", fake_bench)
    result = CliRunner().invoke(app, ["bench", "staging", "--json", "--size-mib", "8", "--rounds", "3"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == fake
    assert (seen["size_mib"], seen["rounds"]) == (8, 3)


def test_bench_command_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_bench(**kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs)
        return {}

    monkeypatch.setattr("rs_ondemand.bench.staging.bench_staging", fake_bench)
    result = CliRunner().invoke(app, ["bench", "staging", "--json"])
    assert result.exit_code == 0, result.output
    assert (seen["size_mib"], seen["rounds"]) == (1024, 2)


@workflow.defn(name=CADIP_STAGING, sandboxed=False)
class BrokenCadipStaging:
    """Stands for a worker whose workflow code fails every workflow task (e.g. an import error)."""

    @workflow.run
    async def run(self, request: dict[str, Any]) -> None:
        raise RuntimeError("this worker cannot run the workflow")


async def test_bench_gives_up_on_a_worker_that_cannot_run_the_workflow(
    settings: Settings, stack_env: dict[str, str], client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_staging, "STUCK_POLL_S", 0.5)
    queue = f"tq-broken-{uuid.uuid4()}"
    target = BenchTarget(
        settings=settings, simulator_url=stack_env["SIMULATOR_URL"], worker_pid=os.getpid(), task_queue=queue
    )
    async with Worker(client, task_queue=queue, workflows=[BrokenCadipStaging]):
        with pytest.raises(BenchError, match=r"workflow task of bench-staging/.* failed"):
            await asyncio.wait_for(run_staging_bench(target, size_mib=1, rounds=1), timeout=60)
