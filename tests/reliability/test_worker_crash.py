"""Crash test 1a: the worker process is SIGKILLed while the EOPF processor of a `DprProcessing` runs.

The worker runs as a process (`python -m rs_ondemand.worker`, its EOPF runs' heartbeat timeout scaled down from 60 s
to 15 s so that a lost attempt is noticed sooner; as in tests/workflows/test_resume.py, which covers a SIGKILL in
the middle of a *transfer*). The demo processor holds its unit (`hold_seconds`) so that the kill surely lands
inside the EOPF run, and so that the killed worker's EOPF processes are still running when what follows the kill
happens. tests/processors/test_processor_activity.py checks `kill_earlier_attempts` on stand-in processes; here it
is the whole chain with real EOPF and Dask processes.

Two scenarios, each run once (module fixtures) and judged by several tests:
- the worker is restarted: the killed worker took its EOPF run along (parent-death signal), the lost attempt is
  retried by itself (heartbeat timeout, then a new attempt that first kills whatever of the lost one would still
  be there and removes its run folder), the request completes and publishes once;
- the request is cancelled right after the kill: it ends CANCELLED (not waiting for an operator on the dead
  attempt's heartbeat timeout) with nothing of the run left.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from rs_ondemand.activities.eopf_process import recorded_drivers
from rs_ondemand.bench.chaos.procs import kill_sessions, kill_worker, session_members
from rs_ondemand.config import Settings
from rs_ondemand.models.dpr import DprProcessIn, DprProcessResult, DprProgress
from rs_ondemand.models.progress import State
from rs_ondemand.names import DPR_PROCESSING, PROGRESS_QUERY, RETRY_SIGNAL, safe_segment
from rs_ondemand.starter.samples import SAMPLE_SESSION
from tests.reliability.short_heartbeats_worker import PROCESSOR_HEARTBEAT_TIMEOUT
from tests.support.cadip_staging import (
    assert_collection_staged,
    catalog_items,
    heartbeat_timeouts,
    keys_under,
    progress_until,
    start_worker,
)
from tests.support.sample_requests import demo_request, demo_table, stage_sample_session

pytestmark = pytest.mark.timeout(500)

OWNER = "dpr-tester"

WORKER_MODULE = "tests.reliability.short_heartbeats_worker"
"""The worker, its EOPF runs' heartbeat timeout scaled down from 60 s: a lost attempt is noticed within seconds."""

HOLD_S = int(PROCESSOR_HEARTBEAT_TIMEOUT.total_seconds()) + 5 + 15
"""How long the demo unit stays busy: longer than the heartbeat timeout plus the 5 s retry interval after which a
lost attempt is retried (and a margin), so the killed attempt's processes are still there when that happens."""


def scratch_folders(eopf_run: str) -> list[Path]:
    """The run folders `run_processor` made for this request (payload copy, EOPF and Dask scratch space)."""
    return list(Path(tempfile.gettempdir()).glob(f"{eopf_run}-*"))


def unit_started(eopf_run: str) -> bool:
    """Whether EOPF reported its unit started (its progress events, in the run folder)."""
    for folder in scratch_folders(eopf_run):
        with contextlib.suppress(OSError):
            if '"event":"before_unit"' in (folder / "progress.jsonl").read_text():
                return True
    return False


@dataclass
class Kill:
    """A DprProcessing whose worker was SIGKILLed while its EOPF unit was running."""

    request: DprProcessIn
    handle: WorkflowHandle[Any, DprProcessResult]
    eopf_run: str
    """The prefix of the run's folders (each records its EOPF process)."""
    driver: int
    """pid of the killed attempt's EOPF process, which leads its own session (the Dask processes are in it)."""
    before_kill: list[int]
    sessions: list[int] = field(default_factory=list)
    """EOPF sessions seen (killed attempt and retried one), for the teardown."""

    @property
    def output_prefix(self) -> str:
        return f"{OWNER}/{self.request.output_targets()['DEMOL0'][0][1]}/"


class CrashLab:
    """Runs the scenarios: a worker process on a queue of its own, killed and started again."""

    def __init__(self, client: Client, settings: Settings, s3: Any, log: Path) -> None:
        self.client, self.settings, self.s3, self.log = client, settings, s3, log
        self.queue = f"tq-rel-dpr-{uuid.uuid4()}"
        self.worker: Any = None
        self.kills: list[Kill] = []

    async def start_worker(self) -> None:
        """A worker on the lab's queue (the one running, if any)."""
        if self.worker is None or self.worker.poll() is not None:
            self.worker = await start_worker(self.queue, self.log, module=WORKER_MODULE)

    async def kill_during_the_unit(self, session_collection: str) -> Kill:
        table = demo_table()
        table["pipelines"][0]["steps"][0]["parameters"]["hold_seconds"] = HOLD_S
        request = demo_request(OWNER, session_collection, tasktable=table)
        await self.start_worker()
        workflow_id = f"test-rel-dpr-{uuid.uuid4()}"
        handle = await self.client.start_workflow(
            DPR_PROCESSING, request, id=workflow_id, task_queue=self.queue, result_type=DprProcessResult
        )
        eopf_run = f"rs-eopf-{safe_segment(workflow_id)[:32]}"
        async with asyncio.timeout(180):
            while not (drivers := recorded_drivers(workflow_id)) or not unit_started(eopf_run):  # noqa: ASYNC110
                await asyncio.sleep(0.5)
        (driver,) = drivers
        kill = Kill(request, handle, eopf_run, driver, [], [driver])
        self.kills.append(kill)
        await asyncio.sleep(2)  # inside the unit's hold
        kill.before_kill = session_members(driver)
        await asyncio.to_thread(kill_worker, self.worker)
        return kill

    async def keys(self, bucket: str, prefix: str) -> set[str]:
        return await asyncio.to_thread(keys_under, self.s3, bucket, prefix)

    async def close(self) -> None:
        if self.worker is not None:
            await asyncio.to_thread(kill_worker, self.worker)
        for kill in self.kills:  # whatever outlived its worker must not outlive the test
            kill_sessions(kill.sessions)
            for folder in await asyncio.to_thread(scratch_folders, kill.eopf_run):
                await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def session_collection(client: Client, task_queue: str) -> str:
    """The real sample session, staged once for the module."""
    collection = f"rel-cadip-{uuid.uuid4().hex[:8]}"
    await stage_sample_session(client, task_queue, OWNER, collection)
    return collection


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def lab(
    client: Client, settings: Settings, s3: Any, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[CrashLab]:
    crash_lab = CrashLab(client, settings, s3, tmp_path_factory.mktemp("dpr-crash") / "worker.log")
    try:
        yield crash_lab
    finally:
        await crash_lab.close()


# --- the worker is restarted -----------------------------------------------------------------------------------


@dataclass
class Retried:
    kill: Kill
    after_restart: list[int]
    """The killed attempt's processes once the replacement worker is up."""
    at_retry: list[int] | None
    """The killed attempt's processes when the retried attempt's EOPF process appeared (None: it never did)."""
    outputs_at_retry: set[str]
    """What was in the output folder then: anything would be the killed attempt's writing."""
    operator_wait: DprProgress | None
    """The progress shown if the request waited for an operator (it was then retried, to finish the scenario)."""
    result: DprProcessResult
    final: DprProgress
    left_at_end: list[int]
    scratch_at_end: list[Path]
    processor_heartbeat_timeouts: list[timedelta]
    """The heartbeat timeout of each EOPF run the request scheduled (its history)."""


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def retried(lab: CrashLab, session_collection: str) -> Retried:
    kill = await lab.kill_during_the_unit(session_collection)
    # The retried attempt reads the payload from S3 again: only the killed attempt needs the hold, so turn it off
    # there (the hold is the demo processor's test knob; nothing else in the payload changes).
    bucket, key = lab.settings.s3.rs_work_bucket, f"dpr/{safe_segment(kill.handle.id)}"
    (payload_key,) = [k for k in await lab.keys(bucket, key) if k.endswith("payload.yaml")]
    payload = (
        await asyncio.to_thread(lambda: lab.s3.get_object(Bucket=bucket, Key=payload_key)["Body"].read())
    ).decode()
    assert payload.count(f"hold_seconds: {HOLD_S}") == 1, payload
    changed = payload.replace(f"hold_seconds: {HOLD_S}", "hold_seconds: 0").encode()
    await asyncio.to_thread(lambda: lab.s3.put_object(Bucket=bucket, Key=payload_key, Body=changed))

    await asyncio.sleep(3)
    await lab.start_worker()
    after_restart = session_members(kill.driver)
    at_retry: list[int] | None = None
    outputs_at_retry: set[str] = set()
    operator_wait = None
    async with asyncio.timeout(240):
        while True:
            progress = await kill.handle.query(PROGRESS_QUERY, result_type=DprProgress)
            if progress.state == State.COMPLETED:
                break
            if progress.state == State.WAITING_FOR_OPERATOR and operator_wait is None:
                operator_wait = progress
                await kill.handle.signal(RETRY_SIGNAL)
            if at_retry is None and (new := [p for p in recorded_drivers(kill.handle.id) if p != kill.driver]):
                at_retry = session_members(kill.driver)
                outputs_at_retry = await lab.keys(lab.settings.s3.rs_bucket, kill.output_prefix)
                kill.sessions += new
            await asyncio.sleep(0.2)
    result = await kill.handle.result()
    final = await kill.handle.query(PROGRESS_QUERY, result_type=DprProgress)
    return Retried(
        kill=kill,
        after_restart=after_restart,
        at_retry=at_retry,
        outputs_at_retry=outputs_at_retry,
        operator_wait=operator_wait,
        result=result,
        final=final,
        left_at_end=[pid for sid in kill.sessions for pid in session_members(sid)],
        scratch_at_end=await asyncio.to_thread(scratch_folders, kill.eopf_run),
        processor_heartbeat_timeouts=await heartbeat_timeouts(lab.client, kill.handle.id, {"run_processor"}),
    )


async def test_after_a_worker_kill_the_request_completes_and_publishes_once(
    retried: Retried, settings: Settings, s3: Any
) -> None:
    run = retried
    assert run.final.state == State.COMPLETED
    assert run.result.processor_status == "completed"
    (published,) = run.result.published
    target = run.kill.request.output_targets()["DEMOL0"][0][1]
    assert published["collection"] == target
    (item,) = catalog_items(settings.catalog.url, target)  # published once, though it ran twice
    assert item["id"] == published["id"]
    assert item["properties"]["processing:lineage"].endswith(run.kill.handle.id)
    (asset,) = item["assets"].values()
    bucket = settings.s3.rs_bucket
    product_prefix = asset["href"].removeprefix(f"s3://{bucket}/").rstrip("/") + "/"
    assert f"{product_prefix}zarr.json" in keys_under(s3, bucket, product_prefix)
    # Nothing in the output collection's folder but the published product; payload and run folder gone.
    outside = {key for key in keys_under(s3, bucket, run.kill.output_prefix) if not key.startswith(product_prefix)}
    assert outside == set()
    assert keys_under(s3, settings.s3.rs_work_bucket, f"dpr/{safe_segment(run.kill.handle.id)}") == set()


async def test_the_kill_hit_a_running_eopf_unit_and_took_it_along(retried: Retried) -> None:
    """The driver and its LocalCluster's processes were there, and died with the killed worker: a run that no
    worker watches would write outputs its request may give up, and compete with the retried attempt."""
    assert retried.kill.driver in retried.kill.before_kill
    assert len(retried.kill.before_kill) >= 2, retried.kill.before_kill
    assert retried.after_restart == []


async def test_the_lost_attempt_is_retried_without_an_operator(retried: Retried) -> None:
    wait = retried.operator_wait
    assert wait is None, f"the request waited for an operator: {wait.last_error if wait else ''}"
    assert retried.processor_heartbeat_timeouts == [PROCESSOR_HEARTBEAT_TIMEOUT]  # one run, scaled-down timeout


async def test_the_retried_attempt_first_kills_what_the_killed_worker_left(retried: Retried) -> None:
    """When the new attempt's EOPF process starts, none of the lost attempt's processes is left, and they had
    written nothing (they were still holding): no two attempts of a run ever write its outputs together."""
    assert retried.at_retry == []
    assert retried.outputs_at_retry == set()
    assert retried.left_at_end == []


async def test_the_inputs_are_untouched(retried: Retried, settings: Settings, s3: Any, session_collection: str) -> None:
    assert_collection_staged(settings, s3, session_collection, {SAMPLE_SESSION}, owner=OWNER)


async def test_no_run_folder_of_the_lost_attempt_stays(retried: Retried) -> None:
    assert retried.scratch_at_end == []


# --- the request is cancelled after the kill ---------------------------------------------------------------------


@dataclass
class Cancelled:
    kill: Kill
    outcome: DprProgress
    """The request's progress once its processor step gave up (ended, or waiting for an operator)."""
    status: WorkflowExecutionStatus
    left_then: list[int]
    """The killed attempt's processes at that moment."""
    lifetime_s: float | None
    """How long they lived on after the kill (None: still there after the wait)."""
    outputs_after: set[str]
    """The output folder once they were gone."""


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def cancelled(lab: CrashLab, session_collection: str) -> AsyncIterator[Cancelled]:
    kill = await lab.kill_during_the_unit(session_collection)
    killed_at = time.monotonic()
    await kill.handle.cancel()
    await lab.start_worker()
    try:
        outcome = await progress_until(
            kill.handle,
            lambda p: p.state in (State.CANCELLED, State.FAILED, State.COMPLETED, State.WAITING_FOR_OPERATOR),
            within_s=150,
            result_type=DprProgress,
        )
        status = (await kill.handle.describe()).status
        assert status is not None
        left_then = session_members(kill.driver)
        lifetime_s = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(HOLD_S + 60):  # what is left goes on to the end of its run
                while session_members(kill.driver):  # noqa: ASYNC110
                    await asyncio.sleep(0.5)
                lifetime_s = round(time.monotonic() - killed_at, 1)
        outputs_after = await lab.keys(lab.settings.s3.rs_bucket, kill.output_prefix)
        yield Cancelled(kill, outcome, status, left_then, lifetime_s, outputs_after)
    finally:
        if (await kill.handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await kill.handle.terminate("end of the test")
        kill_sessions(kill.sessions)
        for bucket, prefix in (
            (lab.settings.s3.rs_bucket, kill.output_prefix),
            (lab.settings.s3.rs_work_bucket, f"dpr/{safe_segment(kill.handle.id)}"),
        ):
            for key in await lab.keys(bucket, prefix):
                await asyncio.to_thread(lambda b=bucket, k=key: lab.s3.delete_object(Bucket=b, Key=k))


async def test_a_request_cancelled_after_its_worker_died_ends_cancelled(
    cancelled: Cancelled, settings: Settings
) -> None:
    assert cancelled.outcome.state == State.CANCELLED, cancelled.outcome.last_error
    assert cancelled.status == WorkflowExecutionStatus.CANCELED
    target = cancelled.kill.request.output_targets()["DEMOL0"][0][1]
    assert catalog_items(settings.catalog.url, target) == []


async def test_nothing_of_the_lost_attempt_outlives_its_request(cancelled: Cancelled) -> None:
    assert cancelled.left_then == [], f"the killed worker's EOPF run lived on {cancelled.lifetime_s} s after the kill"
    assert cancelled.outputs_after == set()
