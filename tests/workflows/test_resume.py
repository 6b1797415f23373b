"""A worker killed with SIGKILL in the middle of a large transfer: the retry resumes from the last stored part."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client

from rs_ondemand.config import Settings
from rs_ondemand.models.staging import CadipStagingInput, CadipStagingResult
from rs_ondemand.names import CADIP_STAGING
from tests.support.stack import Simulator

MiB = 1024 * 1024
SIZE = 192 * MiB


def spawn_worker(queue: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            # The worker, its transfers' heartbeat timeout scaled down: the killed attempt is retried sooner.
            [sys.executable, "-m", "tests.reliability.short_heartbeats_worker"],
            env={**os.environ, "RS_TASK_QUEUE": queue},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def start_worker(queue: str, log: Path) -> subprocess.Popen[bytes]:
    """The worker as a process on its own queue, in its own process group; ready when it says so."""
    process = await asyncio.to_thread(spawn_worker, queue, log)
    for _ in range(300):
        if "Worker started" in await asyncio.to_thread(log.read_text):
            return process
        await asyncio.sleep(0.1)
    raise AssertionError(f"worker did not start:\n{(await asyncio.to_thread(log.read_text))[-2000:]}")


def kill(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


async def stored_offset(s3: Any, settings: Settings, at_least: int) -> int:
    """Wait for the upload checkpoint to record `at_least` bytes stored; return the recorded offset."""
    bucket = settings.s3.rs_work_bucket
    for _ in range(600):
        listed = await asyncio.to_thread(s3.list_objects_v2, Bucket=bucket, Prefix="transfers/")
        for obj in listed.get("Contents", []):
            body = await asyncio.to_thread(lambda k=obj["Key"]: s3.get_object(Bucket=bucket, Key=k)["Body"].read())
            offset = int(json.loads(body)["offset"])
            if offset >= at_least:
                return offset
        await asyncio.sleep(0.05)
    raise AssertionError("the transfer never stored enough parts")


async def test_a_killed_worker_resumes_the_transfer_from_the_last_stored_part(
    client: Client, settings: Settings, simulator: Simulator, s3: Any, collection: str, tmp_path: Path
) -> None:
    session = f"S1A_{uuid.uuid4().int % 10**20:020d}"
    simulator.add_session(session_id=session, satellite="S1A", channels=1, chunks_per_channel=1, chunk_size=SIZE)
    part = settings.s3.rs_s3_part_size
    queue = f"tq-resume-{uuid.uuid4()}"
    log = tmp_path / "worker.log"
    worker = await start_worker(queue, log)
    try:
        request = CadipStagingInput.for_session("alice", session, collection)
        handle = await client.start_workflow(
            CADIP_STAGING, request, id=f"test-resume-{uuid.uuid4()}", task_queue=queue, result_type=CadipStagingResult
        )
        await stored_offset(s3, settings, at_least=3 * part)
        simulator.reset_stats()  # count from here: what the killed attempt still read, then the resumed one
        kill(worker)
        checkpoint = await stored_offset(s3, settings, at_least=0)
        read_by_killed_attempt = simulator.stats("cadip")["bytes_served"]

        worker = await start_worker(queue, log)
        result = await asyncio.wait_for(handle.result(), timeout=180)
    finally:
        kill(worker)

    assert result.staging.items_staged == 1
    served_after_kill = simulator.stats("cadip")["bytes_served"] - read_by_killed_attempt
    assert served_after_kill == SIZE - checkpoint  # the retry asked for the rest only (HTTP Range)
    assert checkpoint >= 3 * part
    assert "resuming" in await asyncio.to_thread(log.read_text)
    (key,) = [
        o["Key"] for o in s3.list_objects_v2(Bucket=settings.s3.rs_bucket, Prefix=f"alice/{collection}/")["Contents"]
    ]
    digest = hashlib.md5()
    for chunk in s3.get_object(Bucket=settings.s3.rs_bucket, Key=key)["Body"].iter_chunks(8 * MiB):
        digest.update(chunk)
    assert digest.hexdigest() == s3.head_object(Bucket=settings.s3.rs_bucket, Key=key)["Metadata"]["md5"]
