"""Helpers of the tests that run EOPF: payloads of the staged session, reading written products from S3."""

from __future__ import annotations

import json
from typing import Any

from rs_ondemand.config import Settings
from rs_ondemand.dpr.payload import build_payload, payload_yaml
from rs_ondemand.dpr.registry import get_tasktable
from rs_ondemand.models.processor_run import PayloadSpec, S3StorageRef
from tests.processors.conftest import StagedSession


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
