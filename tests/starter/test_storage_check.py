"""`check storage`: objects no item references, items whose objects are missing or differ, leftovers; `--fix`
removes the unreferenced and the leftovers and never an item's object (real catalog, real S3, real staging)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest_asyncio
from temporalio.client import Client

from rs_ondemand.activities.catalog_client import CatalogClient
from rs_ondemand.activities.storage import ObjectStore, checkpoint_key, staged_key
from rs_ondemand.config import Settings
from rs_ondemand.models.staging import PripStagingInput, WindowStagingResult
from rs_ondemand.names import PRIP_STAGING
from rs_ondemand.starter.storage_check import check_storage, fix_storage
from tests.support.prip import WINDOW, add_prip_products
from tests.support.stack import Simulator, run_cli


@pytest_asyncio.fixture
async def seams(settings: Settings) -> AsyncIterator[tuple[ObjectStore, CatalogClient]]:
    async with ObjectStore.open(settings.s3) as store, httpx.AsyncClient() as http:
        yield store, CatalogClient(settings.catalog, http)


async def test_check_and_fix(
    client: Client,
    task_queue: str,
    settings: Settings,
    simulator: Simulator,
    collection: str,
    s3: Any,
    seams: tuple[ObjectStore, CatalogClient],
) -> None:
    store, catalog = seams
    owner = f"o{uuid.uuid4().hex[:10]}"
    product_type = add_prip_products(simulator, 4)
    request = PripStagingInput.for_window(owner, product_type, collection, *WINDOW, prip_collection="prip")
    result = await client.execute_workflow(
        PRIP_STAGING, request, id=f"test-check-{uuid.uuid4()}", task_queue=task_queue, result_type=WindowStagingResult
    )
    staged = sorted(result.staging.staged)
    bucket, work = settings.s3.rs_bucket, settings.s3.rs_work_bucket
    objects = {
        item["id"]: [staged_key(owner, collection, item["id"], name) for name in item["assets"]]
        for item in await catalog.all_items(collection)
    }
    assert sorted(objects) == staged and all(objects.values())

    # What the check must find: a stray object (a re-run's leftover), an item whose object is gone, one whose
    # object was replaced, a multipart upload and a transfer checkpoint of a killed worker; and what it must
    # leave: a stray of a running request.
    stray, running = f"{owner}/{collection}/old-run/x.bin", f"{owner}/other-running/y.bin"
    for key in (stray, running):
        s3.put_object(Bucket=bucket, Key=key, Body=b"left over")
    missing_key, changed_key = objects[staged[0]][0], objects[staged[1]][0]
    s3.delete_object(Bucket=bucket, Key=missing_key)
    s3.put_object(Bucket=bucket, Key=changed_key, Body=b"not what the item says")
    upload = s3.create_multipart_upload(Bucket=bucket, Key=f"{owner}/{collection}/crashed/z.bin")["UploadId"]
    checkpoint = checkpoint_key(bucket, f"{owner}/{collection}/crashed/z.bin")
    s3.put_object(Bucket=work, Key=checkpoint, Body=b"{}")

    in_use = {f"{owner}/other-running/"}
    report = await check_storage(store, catalog, in_use, timedelta(0), prefix=f"{owner}/")
    assert report.items == 4 and report.objects == sum(map(len, objects.values())) + 1  # one deleted, two added
    assert report.unreferenced == [stray] and report.kept == [running]
    problems = {(p.item, p.key): p.problem for p in report.assets}
    assert problems[(staged[0], missing_key)] == "missing"
    assert problems[(staged[1], changed_key)].startswith("size 22 != ")
    assert len(problems) == 2
    assert [(u["bucket"], u["upload_id"]) for u in report.uploads] == [(bucket, upload)]
    assert report.checkpoints == [checkpoint]
    assert not report.consistent

    # Younger than the grace period: nothing is removable yet (moto dates every upload 2010-11-10, so uploads
    # are only told apart by the running requests' folders here).
    young = await check_storage(store, catalog, set(), timedelta(hours=1), prefix=f"{owner}/")
    assert young.unreferenced == [] and young.checkpoints == [] and stray in young.kept

    fixed = await fix_storage(store, report)
    assert fixed.removed == {"objects": 1, "checkpoints": 1, "uploads": 1}
    after = await check_storage(store, catalog, in_use, timedelta(0), prefix=f"{owner}/")
    assert after.unreferenced == [] and after.uploads == [] and after.checkpoints == []
    assert after.kept == [running] and len(after.assets) == 2  # the fix never touches an item's objects
    for item_id in staged[2:]:
        for key in objects[item_id]:
            assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0

    code, out, err = await run_cli("check", "storage", "--owner", owner, "--json", "--grace", "0")
    assert code == 1, err  # items still broken
    printed = json.loads(out)
    assert printed["consistent"] is False and len(printed["assets"]) == 2
    assert printed["unreferenced"] == [running]  # not a running request for Temporal: nothing protects it here
