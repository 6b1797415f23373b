"""Helpers of the tests that run EOPF: the staged session, its payloads, a warm runner, the written products in S3
and the EOPF processes still running."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rs_ondemand.activities.eopf_runner import WarmRunner
from rs_ondemand.activities.processor import warm_runner
from rs_ondemand.config import Settings
from rs_ondemand.dpr.payload import build_payload, payload_yaml, run_output_prefix
from rs_ondemand.dpr.registry import get_tasktable
from rs_ondemand.models.processor_run import PayloadSpec, S3StorageRef


@dataclass(frozen=True)
class StagedSession:
    """A generated session staged like the real thing: s3://<bucket>/<owner>/<collection>/<item>/<asset>."""

    bucket: str
    owner: str
    folder: str
    """s3:// URL of the session's folder (what the payload names as the CADU input)."""
    orbit: str
    """s3:// URL of the orbit file."""
    frames: dict[int, int]
    gaps: dict[int, int]
    missing: dict[int, int]

    def output_prefix(self, run_id: str) -> str:
        return run_output_prefix(self.bucket, self.owner, "s01demol0", run_id)


def demo_payload(
    units: list[dict[str, Any]], staged: StagedSession, settings: Settings, run_id: str, **changes: Any
) -> str:
    """The demo payload of the staged session, as the DPR workflow would generate it."""
    fields: dict[str, Any] = {
        "run_id": run_id,
        "units": units,
        "input_paths": {"CADU": staged.folder},
        "adf_paths": {"ORBIT": [staged.orbit]},
        "output_paths": {"DEMOL0": staged.output_prefix(run_id)},
        "storage": S3StorageRef(endpoint_url=settings.s3.s3_endpoint_url, region_name=settings.s3.aws_default_region),
        "external_modules": get_tasktable("demo").get("external_modules", []),
    }
    return payload_yaml(build_payload(PayloadSpec(**(fields | changes))))


def product_metadata(s3: Any, path: str) -> dict[str, Any]:
    """The consolidated `zarr.json` of a product written at `path` (s3://bucket/key.zarr)."""
    bucket, _, key = path.removeprefix("s3://").partition("/")
    return json.loads(s3.get_object(Bucket=bucket, Key=f"{key.rstrip('/')}/zarr.json")["Body"].read())


@asynccontextmanager
async def started_runner(eopf_executable: Path) -> AsyncIterator[WarmRunner]:
    """A warm EOPF runner, closed (with its runs) on exit."""
    started = warm_runner(eopf_executable)
    try:
        yield started
    finally:
        await started.aclose()


def running(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its new parent to reap it does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def assert_demo_product(s3: Any, path: str, staged: StagedSession) -> None:
    metadata = product_metadata(s3, path)
    stac = metadata["attributes"]["stac_discovery"]
    assert path.endswith(f"/{stac['id']}.zarr")
    assert stac["id"].startswith("S01DEMOL0_20241114T143038_00164_A")
    properties = stac["properties"]
    assert properties | {"processing:software": None} == properties | {
        "product:type": "S01DEMOL0",
        "platform": "sentinel-1a",
        "constellation": "sentinel-1",
        "datetime": "2024-11-14T14:30:38.477000Z",
        "start_datetime": "2024-11-14T14:30:38.477000Z",
        "end_datetime": "2024-11-14T14:33:22.662000Z",
        "sat:absolute_orbit": 56552,
        "processing:software": None,
    }
    groups = metadata["consolidated_metadata"]["metadata"]
    frames = groups["measurements/frames"]["attributes"]
    # What the simulator's reference decoder finds, with the 3 frames left out of channel 2.
    assert frames["channel_summary"] == {
        str(channel): {
            "frames": staged.frames[channel],
            "gaps": staged.gaps[channel],
            "missing_frames": staged.missing[channel],
        }
        for channel in (1, 2)
    }
    assert frames["sync_errors"] == 0 and frames["chunk_files"] == 6
    orbit = groups["conditions/orbit"]["attributes"]
    assert orbit["orbit_file_type"] == "AUX_RESORB"
    assert groups["conditions/orbit/time"]["shape"] == [18]  # every 10 s over 164.2 s, both ends included
