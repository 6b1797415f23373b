"""CADIP staging requests of generated sessions, as the reliability, batch and split-staging tests run them: worker
processes, waiting on progress, /proc inspection and the one consistency check every crash and fault test ends with."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from rs_ondemand.bench.chaos import procs
from rs_ondemand.checksums import md5_from_checksum
from rs_ondemand.config import Settings
from rs_ondemand.models.progress import Progress
from rs_ondemand.models.staging import CadipStagingInput, CadipStagingResult
from rs_ondemand.names import CADIP_STAGING, PROGRESS_QUERY
from tests.support.stack import Simulator

MiB = 1024 * 1024
OWNER = "reliability"
"""Owner of the CADIP staging requests of this package."""


# --- requests ----------------------------------------------------------------------------------------------------


def new_session(simulator: Simulator, chunks: int, chunk_size: int = 2 * MiB) -> str:
    """A generated one-channel CADIP session of `chunks` chunk files."""
    session = f"S1A_{uuid.uuid4().int % 10**20:020d}"
    simulator.add_session(
        session_id=session, satellite="S1A", channels=1, chunks_per_channel=chunks, chunk_size=chunk_size
    )
    return session


async def start_staging(
    client: Client, queue: str, session: str, collection: str, **options: Any
) -> WorkflowHandle[Any, CadipStagingResult]:
    """Start `OnDemandCadipStaging` of `session` into `collection` (`options`: the request's operator options)."""
    request = CadipStagingInput.for_session(OWNER, session, collection, options=options)
    return await client.start_workflow(
        CADIP_STAGING, request, id=f"test-rel-{uuid.uuid4()}", task_queue=queue, result_type=CadipStagingResult
    )


# --- worker processes and /proc (the chaos soak's helpers) ------------------------------------------------------


async def start_worker(
    queue: str, log: Path, env: Mapping[str, str] | None = None, module: str = "rs_ondemand.worker"
) -> subprocess.Popen[bytes]:
    """`python -m rs_ondemand.worker` (or another `module` that runs it) on `queue`, in a session of its own, once
    it logs that it started."""
    argv = [sys.executable, "-m", module]
    try:
        return await procs.start_worker(argv, {**os.environ, **(env or {}), "RS_TASK_QUEUE": queue}, log)
    except RuntimeError as err:
        raise AssertionError(str(err)) from None


# --- waiting on a request ----------------------------------------------------------------------------------------


async def progress_until(
    handle: WorkflowHandle[Any, Any],
    done: Callable[[Progress], bool],
    within_s: float = 90,
    result_type: type[Progress] = Progress,
) -> Progress:
    """Poll the `progress` query until `done`; RPC errors (a Temporal server restarting) are waited out."""
    async with asyncio.timeout(within_s):
        while True:
            try:
                progress = await handle.query(PROGRESS_QUERY, result_type=result_type)
            except RPCError:
                progress = None
            if progress is not None and done(progress):
                return progress
            await asyncio.sleep(0.2)


async def result_of(handle: WorkflowHandle[Any, Any], within_s: float = 180) -> Any:
    """The workflow's result; RPC errors (a Temporal server restarting) are waited out."""
    async with asyncio.timeout(within_s):
        while True:
            try:
                return await handle.result()
            except RPCError:
                await asyncio.sleep(1)


async def heartbeat_timeouts(client: Client, workflow_id: str, activity_types: set[str]) -> list[timedelta]:
    """The heartbeat timeout of each activity of `activity_types` the workflow scheduled, from its history: what
    a test that scales them down (`short_heartbeats_worker`) checks it ran under."""
    return [
        event.activity_task_scheduled_event_attributes.heartbeat_timeout.ToTimedelta()
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events()
        if event.activity_task_scheduled_event_attributes.activity_type.name in activity_types
    ]


# --- consistency -------------------------------------------------------------------------------------------------


def catalog_items(catalog_url: str, collection: str) -> list[dict[str, Any]]:
    """Every item of a catalog collection, following the paging links ([] for a missing collection)."""
    items: list[dict[str, Any]] = []
    url: str | None = f"{catalog_url.rstrip('/')}/collections/{collection}/items?limit=100"
    with httpx.Client(timeout=30, trust_env=False) as http:
        while url:
            response = http.get(url)
            if response.status_code == 404 and not items:
                return []
            response.raise_for_status()
            page = response.json()
            items += page["features"]
            url = next((link["href"] for link in page.get("links", []) if link.get("rel") == "next"), None)
    return items


def station_assets(stac_url: str, collection: str, item_id: str) -> dict[str, tuple[int, str]]:
    """`{asset: (file:size, md5)}` of a station item, as its STAC facade announces it (the truth to reach)."""
    with httpx.Client(timeout=30, trust_env=False) as http:
        response = http.get(f"{stac_url.rstrip('/')}/collections/{collection}/items/{item_id}")
    response.raise_for_status()
    assets = response.json()["assets"]
    return {name: (a["file:size"], str(md5_from_checksum(a["file:checksum"]))) for name, a in assets.items()}


def keys_under(s3: Any, bucket: str, prefix: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def uploads_under(s3: Any, bucket: str, prefix: str) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])]


def assert_staged_consistently(
    s3: Any,
    *,
    catalog_url: str,
    bucket: str,
    work_bucket: str,
    owner: str,
    collection: str,
    items: set[str],
    station: Mapping[str, Mapping[str, tuple[int, str]]] | None = None,
    request_id: str | None = None,
) -> list[dict[str, Any]]:
    """The end state every test of this package asks for, read from the catalog and S3 directly.

    - the collection holds exactly `items`, each once;
    - every asset is at `s3://<bucket>/<owner>/<collection>/<item>/<asset>`, its object has the item's
      `file:size`, its stored MD5 metadata is the item's `file:checksum` and so are its bytes (and, given
      `station`, the station's announced size and MD5);
    - no object under the request's prefix without a catalog item, no multipart upload left, no checkpoint left,
      and (given `request_id`) no request manifest left in the work bucket.
    """
    found = catalog_items(catalog_url, collection)
    ids = [item["id"] for item in found]
    assert len(ids) == len(set(ids)), f"duplicate items in {collection}: {ids}"
    assert set(ids) == items, f"{collection} holds {sorted(ids)}, expected {sorted(items)}"
    prefix = f"{owner}/{collection}/"
    referenced = set()
    for item in found:
        if station is not None:
            assert set(item["assets"]) == set(station[item["id"]]), item["id"]
        for name, asset in item["assets"].items():
            key = f"{prefix}{item['id']}/{name}"
            assert asset["href"] == f"s3://{bucket}/{key}"
            referenced.add(key)
            head = s3.head_object(Bucket=bucket, Key=key)
            md5 = md5_from_checksum(asset["file:checksum"])
            assert head["ContentLength"] == asset["file:size"], key
            assert head["Metadata"].get("md5") == md5, key
            digest = hashlib.md5()
            for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(8 * MiB):
                digest.update(chunk)
            assert digest.hexdigest() == md5, f"{key}: the bytes are not what the catalog announces"
            if station is not None:
                assert (asset["file:size"], md5) == station[item["id"]][name], key
    assert keys_under(s3, bucket, prefix) == referenced, "objects without a catalog item (or assets without object)"
    assert uploads_under(s3, bucket, prefix) == []
    assert keys_under(s3, work_bucket, f"transfers/{bucket}/{prefix}") == set(), "checkpoints left behind"
    if request_id is not None:
        assert keys_under(s3, work_bucket, f"requests/{request_id}/") == set(), "request manifests left behind"
    return found


def assert_collection_staged(
    settings: Settings,
    s3: Any,
    collection: str,
    items: set[str],
    *,
    owner: str = OWNER,
    station: Mapping[str, Mapping[str, tuple[int, str]]] | None = None,
    request_id: str | None = None,
) -> list[dict[str, Any]]:
    """`assert_staged_consistently` on the stack of `settings` (its catalog and buckets)."""
    return assert_staged_consistently(
        s3,
        catalog_url=settings.catalog.url,
        bucket=settings.s3.rs_bucket,
        work_bucket=settings.s3.rs_work_bucket,
        owner=owner,
        collection=collection,
        items=items,
        station=station,
        request_id=request_id,
    )


def assert_session_staged(
    settings: Settings,
    s3: Any,
    collection: str,
    session: str,
    request_id: str,
    station: dict[str, tuple[int, str]] | None = None,
) -> None:
    """`assert_staged_consistently` for one session staged by `start_staging`, against what the station
    announces (now, or as `station` recorded it before the simulator restarted)."""
    assert settings.cadip.url
    announced = station or station_assets(settings.cadip.url, "cadip", session)
    assert_collection_staged(settings, s3, collection, {session}, station={session: announced}, request_id=request_id)
