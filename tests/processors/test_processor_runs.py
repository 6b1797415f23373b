"""Real EOPF runs of the demo processor through the `run_processor` activity: dry run, LocalCluster, scheduler
address, EOPF's error on failure, and cancellation killing the whole process group."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from rs_ondemand.activities.eopf_process import group_members
from rs_ondemand.activities.eopf_runner import WarmRunner
from rs_ondemand.activities.processor import ProcessorActivities, ProcessorFailedError, ProcessorRefusedError
from rs_ondemand.bench.dask_cluster import address_dask_cluster
from rs_ondemand.config import ProcessorSettings, Settings
from rs_ondemand.models.processor_run import AddressDaskCluster, RunProcessorInput
from tests.support.eopf_runs import StagedSession, assert_demo_product, demo_payload

pytestmark = pytest.mark.timeout(180)


def run_id() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def run_folders(rid: str) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"rs-eopf-{rid}-*"))


async def test_demo_payload_passes_eopf_dry_run(
    processor: ProcessorActivities, demo_units: list[dict[str, Any]], staged_session: StagedSession, settings: Settings
) -> None:
    """EOPF's own validation accepts the generated payload; it resolves `${VAR}` and finds every S3 path."""
    rid = run_id()
    payload = demo_payload(demo_units, staged_session, settings, rid, dry_run=True)
    result = await ActivityEnvironment().run(
        processor.run_processor, RunProcessorInput(run_id=rid, dask_cluster_label="local", payload_yaml=payload)
    )
    assert result.status == "dry_run"
    assert result.written_products == []


async def test_failing_run_reports_eopf_error(
    processor: ProcessorActivities, demo_units: list[dict[str, Any]], staged_session: StagedSession, settings: Settings
) -> None:
    """A session folder that does not exist: the error carries EOPF's own message, and no credential."""
    rid = run_id()
    missing = StagedSession(**(staged_session.__dict__ | {"folder": staged_session.folder.rstrip("/") + "-missing/"}))
    payload = demo_payload(demo_units, missing, settings, rid, dry_run=True)
    with pytest.raises(ProcessorFailedError) as failure:
        await ActivityEnvironment().run(
            processor.run_processor, RunProcessorInput(run_id=rid, dask_cluster_label="local", payload_yaml=payload)
        )
    message = str(failure.value)
    assert f"EOPF run '{rid}' failed (exit code 1)" in message
    assert "CADU input is requested for ['DemoL0Unit.1.CADU'] but its path is not available" in message
    # Its data may come back (a path not available is not a refusal of the payload): an operator may retry.
    assert not failure.value.non_retryable
    assert "--- last EOPF output ---" in message
    secret = settings.s3.aws_secret_access_key
    assert secret is not None and secret.get_secret_value() not in message


@pytest.mark.parametrize("warm", [True, False], ids=["warm-runner", "cold-process"])
async def test_a_unit_module_eopf_cannot_import_is_refused_for_good(
    warm: bool,
    processor: ProcessorActivities,
    store: Any,
    processor_settings: ProcessorSettings,
    demo_units: list[dict[str, Any]],
    staged_session: StagedSession,
    settings: Settings,
) -> None:
    """A task table naming a module the EOPF environment does not have: EOPF refuses the payload before running
    anything, and so would it on every retry. The error is final (the request fails at once, issue 14), whether
    the run is a fork of the warm runner or a new `eopf` process (RS_EOPF_WARM_RUNNER=false)."""
    if not warm:
        processor = ProcessorActivities(store, processor_settings.model_copy(update={"warm_runner": False}))
    rid = run_id()
    units = [demo_units[0] | {"module": "l0.s1.s1_l0_processor"}]
    payload = demo_payload(units, staged_session, settings, rid)
    with pytest.raises(ProcessorRefusedError) as failure:
        await ActivityEnvironment().run(
            processor.run_processor, RunProcessorInput(run_id=rid, dask_cluster_label="local", payload_yaml=payload)
        )
    assert failure.value.non_retryable
    assert str(failure.value) == f"EOPF refused the payload of run '{rid}': Module l0.s1.s1_l0_processor not found"


async def test_demo_processor_runs_on_local_cluster(
    processor: ProcessorActivities,
    demo_units: list[dict[str, Any]],
    staged_session: StagedSession,
    settings: Settings,
    s3: Any,
) -> None:
    """The payload goes through S3 like in RS; the product lands under the run's own prefix with its STAC."""
    rid = run_id()
    payload_file = f"s3://{settings.s3.rs_work_bucket}/dpr/{rid}/payload.yaml"
    s3.put_object(
        Bucket=settings.s3.rs_work_bucket,
        Key=f"dpr/{rid}/payload.yaml",
        Body=demo_payload(demo_units, staged_session, settings, rid).encode(),
    )
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    result = await env.run(
        processor.run_processor, RunProcessorInput(run_id=rid, dask_cluster_label="local", s3_payload_file=payload_file)
    )

    assert result.status == "completed"
    (product,) = result.written_products
    assert product.output_id == "DEMOL0"
    assert product.path.startswith(staged_session.output_prefix(rid))
    assert_demo_product(s3, product.path, staged_session)
    events = [beat["event"] for beat in beats]
    assert events[0] == "starting" and "before_unit" in events and events[-1] == "workflow_teardown"
    assert beats[-1]["units_done"] == 1 and beats[-1]["units_total"] == 1 and beats[-1]["outputs_written"] == 1
    assert beats[-1]["percent"] == 100
    await env.run(processor.delete_payload, payload_file)


@pytest.fixture
def dask_scheduler(eopf_executable: Path) -> Iterator[str]:
    """The bench's Dask cluster: a `dask scheduler` and a `dask worker` (2 processes) from the EOPF venv, on
    loopback, stopped after."""
    with address_dask_cluster(eopf_executable, lambda message: None) as address:
        yield address


async def test_demo_processor_runs_on_scheduler_address(
    store: Any,
    processor_settings: ProcessorSettings,
    runner: WarmRunner,
    dask_scheduler: str,
    demo_units: list[dict[str, Any]],
    staged_session: StagedSession,
    settings: Settings,
    s3: Any,
) -> None:
    """The label names an external scheduler: EOPF only drives, the decoding runs on its workers."""
    clusters = {"dask-l0": AddressDaskCluster(address=dask_scheduler)}
    processor = ProcessorActivities(
        store, processor_settings.model_copy(update={"dask_clusters": clusters}), runner=runner
    )
    rid = run_id()
    payload = demo_payload(demo_units, staged_session, settings, rid)
    result = await ActivityEnvironment().run(
        processor.run_processor, RunProcessorInput(run_id=rid, dask_cluster_label="dask-l0", payload_yaml=payload)
    )
    (product,) = result.written_products
    assert_demo_product(s3, product.path, staged_session)


async def test_cancellation_kills_the_eopf_process_group(
    processor: ProcessorActivities, demo_units: list[dict[str, Any]], staged_session: StagedSession, settings: Settings
) -> None:
    """Cancelled while the unit runs on its LocalCluster: the driver, nannies and workers are all gone."""
    rid = run_id()
    env = ActivityEnvironment()
    beats: list[dict[str, Any]] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    # The unit holds for a minute, so the cancellation surely arrives while it runs.
    payload = demo_payload(
        demo_units, staged_session, settings, rid, unit_parameters={"DemoL0Unit": {"hold_seconds": 60}}
    )
    task = asyncio.create_task(
        env.run(
            processor.run_processor, RunProcessorInput(run_id=rid, dask_cluster_label="local", payload_yaml=payload)
        )
    )
    async with asyncio.timeout(90):
        while not any(beat["event"] == "before_unit" for beat in beats):
            assert not task.done(), "the run ended before it could be cancelled"
            await asyncio.sleep(0.2)
    pgid = beats[-1]["pid"]
    assert len(group_members(pgid)) >= 3  # the driver, and the LocalCluster's nannies and workers
    cancelled_at = time.monotonic()
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - cancelled_at < 15  # SIGTERM, then SIGKILL after the 5 s grace at the latest
    assert group_members(pgid) == []
    assert run_folders(rid) == []  # its folder, EOPF's and Dask's temporary files included
