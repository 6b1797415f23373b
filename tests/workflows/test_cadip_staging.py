"""OnDemandCadipStaging end to end: Temporal dev server, moto S3, pgstac catalog and the station simulator."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from rs_ondemand.activities._stac import open_stac_api
from rs_ondemand.checksums import md5_from_checksum
from rs_ondemand.config import Settings
from rs_ondemand.models.progress import Progress, State
from rs_ondemand.models.staging import CadipStagingInput, CadipStagingResult
from rs_ondemand.names import CADIP_STAGING, PROGRESS_QUERY
from rs_ondemand.workflows._failures import root_cause
from rs_ondemand.workflows.cadip_staging import OnDemandCadipStaging
from tests.support.stack import Simulator

SESSION = "S1A_20241114143038056552"  # the real-station session the simulator embeds (2 channels)
OWNER = "alice"


def request(session: str, collection: str, owner: str = OWNER) -> CadipStagingInput:
    return CadipStagingInput.for_session(owner, session, collection)


async def stage(
    client: Client, queue: str, session: str, collection: str, workflow_id: str | None = None
) -> tuple[CadipStagingResult, Progress]:
    handle = await client.start_workflow(
        OnDemandCadipStaging.run,
        request(session, collection),
        id=workflow_id or f"test-cadip-{uuid.uuid4()}",
        task_queue=queue,
    )
    result = await handle.result()
    return result, await handle.query(PROGRESS_QUERY, result_type=Progress)


def station_item(settings: Settings, session: str) -> dict[str, Any]:
    """The session as the station's STAC facade describes it (what staging must reproduce)."""
    assert settings.cadip.url
    with open_stac_api(settings.cadip.url, 30) as station:
        (item,) = list(station.search(ids=[session], collections=["cadip"]).items_as_dicts())
    return item


def catalog_item(settings: Settings, collection: str, item_id: str) -> httpx.Response:
    return httpx.get(f"{settings.catalog.url}/collections/{collection}/items/{item_id}", timeout=30)


def keys_under(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def uploads_under(s3: Any, bucket: str, prefix: str) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])]


def assert_nothing_written(settings: Settings, s3: Any, collection: str, session: str) -> None:
    bucket = settings.s3.rs_bucket
    assert keys_under(s3, bucket, f"{OWNER}/{collection}/") == []
    assert uploads_under(s3, bucket, f"{OWNER}/{collection}/") == []
    assert catalog_item(settings, collection, session).status_code == 404


async def test_cadip_staging_stages_every_chunk_with_the_station_md5(
    client: Client, task_queue: str, settings: Settings, s3: Any, collection: str
) -> None:
    """Every chunk lands in S3 with the station's MD5 and size; the item points at S3 and names its owner."""
    expected = station_item(settings, SESSION)
    assert len(expected["assets"]) > 10

    workflow_id = f"test-cadip-{uuid.uuid4()}"
    result, progress = await stage(client, task_queue, SESSION, collection, workflow_id)

    assert result.staging.staged == [SESSION] and result.staging.skipped == []
    assert result.staging.assets_staged == len(expected["assets"])
    response = catalog_item(settings, collection, SESSION)
    assert response.status_code == 200
    item = response.json()
    assert item["properties"]["owner"] == OWNER
    assert set(item["assets"]) == set(expected["assets"])
    bucket = settings.s3.rs_bucket
    for name, asset in item["assets"].items():
        key = f"{OWNER}/{collection}/{SESSION}/{name}"
        assert asset["href"] == f"s3://{bucket}/{key}"
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        station_md5 = md5_from_checksum(expected["assets"][name]["file:checksum"])
        assert hashlib.md5(body).hexdigest() == station_md5 == md5_from_checksum(asset["file:checksum"])
        assert len(body) == asset["file:size"] == expected["assets"][name]["file:size"]
    # Nothing else under the request's prefix, and the request's manifests are gone from the work bucket.
    assert len(keys_under(s3, bucket, f"{OWNER}/{collection}/")) == len(expected["assets"])
    assert keys_under(s3, settings.s3.rs_work_bucket, f"requests/{workflow_id}/") == []
    assert progress.state == State.COMPLETED
    assert (progress.assets_done, progress.assets_total) == (len(expected["assets"]),) * 2
    assert progress.bytes_done == progress.bytes_total == sum(a["file:size"] for a in expected["assets"].values())


async def test_cadip_staging_again_stages_nothing_new(
    client: Client, task_queue: str, settings: Settings, simulator: Simulator, collection: str
) -> None:
    """The original's idempotence: a session already in the collection is not downloaded again."""
    await stage(client, task_queue, SESSION, collection)
    served = simulator.stats("cadip")["bytes_served"]

    again, progress = await stage(client, task_queue, SESSION, collection)

    assert again.staging.skipped == [SESSION] and again.staging.staged == []
    assert again.staging.bytes_staged == 0
    assert simulator.stats("cadip")["bytes_served"] == served
    assert progress.state == State.COMPLETED and progress.items_skipped == 1


async def test_a_catalog_item_whose_objects_were_lost_is_staged_again(
    client: Client, task_queue: str, settings: Settings, s3: Any, simulator: Simulator, collection: str
) -> None:
    """ "Already staged" means in the catalog *and* in S3: an item whose object went missing (a bucket restored
    from an older backup, an in-memory S3 restarted, a mistaken delete) is not skipped forever while pointing at
    nothing; staging it again puts every object back, as the item describes it."""
    await stage(client, task_queue, SESSION, collection)
    bucket, prefix = settings.s3.rs_bucket, f"{OWNER}/{collection}/{SESSION}/"
    keys = keys_under(s3, bucket, prefix)
    lost = keys[len(keys) // 2]
    s3.delete_object(Bucket=bucket, Key=lost)
    simulator.reset_stats()

    again, progress = await stage(client, task_queue, SESSION, collection)

    assert again.staging.staged == [SESSION] and again.staging.skipped == []
    assert simulator.stats("cadip")["downloads"] == len(keys)
    assert keys_under(s3, bucket, prefix) == keys
    item = catalog_item(settings, collection, SESSION).json()
    for name, asset in item["assets"].items():
        head = s3.head_object(Bucket=bucket, Key=f"{prefix}{name}")
        assert head["ContentLength"] == asset["file:size"]
        assert head["Metadata"]["md5"] == md5_from_checksum(asset["file:checksum"])
    assert progress.state == State.COMPLETED and progress.items_skipped == 0


async def test_cadip_staging_handles_an_unknown_session(
    client: Client, task_queue: str, settings: Settings, s3: Any, collection: str
) -> None:
    """An unknown session fails at once with the original's message, and nothing is written."""
    with pytest.raises(WorkflowFailureError) as caught:
        await stage(client, task_queue, "S1A_20990101000000000000", collection)
    cause = root_cause(caught.value)
    assert isinstance(cause, ApplicationError) and cause.type == "NotFoundError"
    assert "No Cadip session found for id='S1A_20990101000000000000'" in cause.message
    assert_nothing_written(settings, s3, collection, "S1A_20990101000000000000")


async def test_cadip_staging_handles_corrupted_downloads(
    client: Client, task_queue: str, settings: Settings, s3: Any, simulator: Simulator, collection: str
) -> None:
    """Corruption that persists is detected, fails the request as a checksum error and publishes nothing."""
    simulator.faults(cadip={"corrupt_rate": 1.0})
    with pytest.raises(WorkflowFailureError) as caught:
        await stage(client, task_queue, SESSION, collection)
    cause = root_cause(caught.value)
    assert isinstance(cause, ApplicationError) and cause.type == "ChecksumMismatchError", cause
    assert simulator.stats("cadip")["errors_injected"] > 0
    assert_nothing_written(settings, s3, collection, SESSION)


async def test_cadip_staging_survives_a_station_error_burst(
    client: Client, task_queue: str, settings: Settings, s3: Any, simulator: Simulator, collection: str
) -> None:
    """5xx answers and connection resets for a few seconds are absorbed by retries. (Corruption is final after
    3 attempts by design, so it has its own test.)"""
    simulator.faults(cadip={"error_rate": 0.6, "reset_rate": 0.3})

    async def end_burst() -> None:
        await asyncio.sleep(4)
        simulator.clear_faults()

    ender = asyncio.create_task(end_burst())
    result, _ = await stage(client, task_queue, SESSION, collection)
    await ender

    assert result.staging.staged == [SESSION]
    assert simulator.stats("cadip")["errors_injected"] > 0
    item = catalog_item(settings, collection, SESSION).json()
    for name, asset in item["assets"].items():
        body = s3.get_object(Bucket=settings.s3.rs_bucket, Key=f"{OWNER}/{collection}/{SESSION}/{name}")["Body"]
        assert hashlib.md5(body.read()).hexdigest() == md5_from_checksum(asset["file:checksum"])


async def execute_with_temporal_cli(
    settings: Settings, queue: str, payload: dict[str, Any], *extra: str
) -> tuple[int, str]:
    """`temporal workflow execute --type OnDemandCadipStaging --input JSON`, without blocking the event loop the
    in-process worker runs on."""
    args = (
        "workflow",
        "execute",
        "--type",
        CADIP_STAGING,
        "--task-queue",
        queue,
        "--workflow-id",
        f"test-cli-{uuid.uuid4()}",
        "--input",
        json.dumps(payload),
        *extra,
    )
    binary = Path(sys.executable).with_name("temporal")
    process = await asyncio.create_subprocess_exec(
        str(binary if binary.exists() else shutil.which("temporal")),
        *args,
        "--address",
        settings.temporal.address,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=180)
    return process.returncode or 0, output.decode()


async def test_temporal_cli_starts_cadip_staging(task_queue: str, settings: Settings, collection: str) -> None:
    """`temporal workflow execute --type OnDemandCadipStaging --input '{…}'` works as it is
    (docs/interface.md#workflow-types)."""
    payload = request(SESSION, collection).model_dump(mode="json", exclude_none=True)
    code, output = await execute_with_temporal_cli(settings, task_queue, payload, "--output", "json")
    assert code == 0, output
    assert catalog_item(settings, collection, SESSION).status_code == 200


async def test_temporal_cli_invalid_input_fails_the_workflow_at_once(task_queue: str, settings: Settings) -> None:
    """Bad JSON from an operator fails the workflow with pydantic's message instead of retrying forever."""
    payload = {"env": {"owner_id": OWNER}, "session_identifier": "../x", "cadip_collection_identifier": "cadip"}
    code, output = await execute_with_temporal_cli(settings, task_queue, payload)
    assert code != 0
    assert "session_identifier" in output and "catalog_collection_identifier" in output, output
