"""Fixtures of the processor tests: the EOPF environment (required), S3 data of a generated session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from rs_ondemand.activities.eopf_runner import WarmRunner
from rs_ondemand.activities.processor import ProcessorActivities
from rs_ondemand.activities.storage import ObjectStore
from rs_ondemand.config import DEFAULT_EOPF, ProcessorSettings, Settings
from rs_ondemand.dpr import build_unit_list
from rs_ondemand.dpr.registry import get_tasktable
from tests.support.eopf_runs import StagedSession, started_runner
from tests.support.eopf_session import (
    ORBIT_NAME,
    SESSION_ID,
    SESSION_START,
    SESSION_STOP,
    make_orbit_file,
    make_session,
)


@pytest.fixture(scope="session")
def eopf_executable() -> Path:
    """The EOPF venv's `eopf`; its absence fails the processor tests (they are not optional)."""
    if not DEFAULT_EOPF.is_file():
        pytest.fail(f"the EOPF environment is missing ({DEFAULT_EOPF}): run scripts/setup-eopf first", pytrace=False)
    return DEFAULT_EOPF


@pytest.fixture(scope="session")
def staged_session(settings: Settings, s3: Any) -> StagedSession:
    """Six chunk files (two channels, a 3-frame gap in channel 2, cut last chunks) and a RESORB, in S3."""
    bucket, owner = settings.s3.rs_bucket, f"test-{uuid.uuid4().hex[:8]}"
    session = make_session(skipped={2: 3})
    prefix = f"{owner}/s01-cadip-session/{SESSION_ID}"
    for name, data in session.files.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=data)
    orbit_key = f"{owner}/s1-aux/{ORBIT_NAME.removesuffix('.EOF')}/{ORBIT_NAME}"
    s3.put_object(Bucket=bucket, Key=orbit_key, Body=make_orbit_file())
    return StagedSession(
        bucket=bucket,
        owner=owner,
        folder=f"s3://{bucket}/{prefix}/",
        orbit=f"s3://{bucket}/{orbit_key}",
        frames=session.frames,
        gaps=session.gaps,
        missing=session.missing,
    )


@pytest.fixture(scope="session")
def demo_units() -> list[dict[str, Any]]:
    """The demo task table's units for the sample session's request."""
    variables = {"start_datetime": SESSION_START, "end_datetime": SESSION_STOP, "satellite": "sentinel-1a"}
    return build_unit_list(get_tasktable("demo"), "demo_full", None, None, external_variables=variables)


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def store(settings: Settings) -> AsyncIterator[ObjectStore]:
    async with ObjectStore.open(settings.s3) as opened:
        yield opened


@pytest.fixture
def processor_settings(eopf_executable: Path) -> Iterator[ProcessorSettings]:
    # A short grace keeps the cancellation test quick; production waits longer for EOPF to close its cluster.
    yield ProcessorSettings(executable=eopf_executable, kill_grace_s=5.0, heartbeat_s=0.5)


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def runner(eopf_executable: Path) -> AsyncIterator[WarmRunner]:
    """One warm EOPF runner for the session's processor tests, as a worker has one (EOPF is imported once)."""
    async with started_runner(eopf_executable) as started:
        yield started


@pytest.fixture
def processor(store: ObjectStore, processor_settings: ProcessorSettings, runner: WarmRunner) -> ProcessorActivities:
    return ProcessorActivities(store, processor_settings, runner=runner)
