"""Catalog publication: the staged item's shape, collection creation, 409 handling and the check of staged objects,
against pgstac and S3."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pystac
import pytest_asyncio

from rs_ondemand.activities.catalog import CatalogActivities
from rs_ondemand.activities.catalog_client import CatalogClient
from rs_ondemand.activities.catalog_publish import staged_item
from rs_ondemand.activities.storage import MD5_METADATA, ObjectStore, staged_key
from rs_ondemand.checksums import md5_multihash
from rs_ondemand.config import Settings
from rs_ondemand.models.publication import PublishItemsInput
from rs_ondemand.models.staging import ItemRef, PrepareStagingInput
from tests.support.catalog import STATION_ITEM


def test_staged_item_points_at_s3_and_carries_size_checksum_owner() -> None:
    md5 = "0" * 31 + "1"
    item = staged_item(STATION_ITEM, "alice", "sessions", "bucket", {"DCS_01_ch1_DSDB_00001.raw": (42, md5)})
    asset = item["assets"]["DCS_01_ch1_DSDB_00001.raw"]
    assert asset["href"] == "s3://bucket/alice/sessions/S1A_20240101000000000001/DCS_01_ch1_DSDB_00001.raw"
    assert asset["file:size"] == 42 and asset["file:checksum"] == "d50110" + md5
    assert "alternate" not in asset and asset["roles"] == ["cadu"]
    assert item["properties"]["owner"] == "alice" and item["collection"] == "sessions"
    assert all(link["rel"] != "self" for link in item["links"])
    assert item["geometry"]["type"] == "Polygon" and item["bbox"] == [-180.0, -90.0, 180.0, 90.0]
    assert pystac.Item.from_dict(item).id == STATION_ITEM["id"]  # still a well-formed STAC item


@pytest_asyncio.fixture(loop_scope="session")
async def catalog(settings: Settings) -> AsyncIterator[CatalogClient]:
    async with httpx.AsyncClient() as http:
        yield CatalogClient(settings.catalog, http)


async def test_ensure_collection_creates_once(catalog: CatalogClient) -> None:
    collection = f"test-{uuid.uuid4().hex[:8]}"
    assert await catalog.ensure_collection(collection) is True
    assert await catalog.ensure_collection(collection) is False


async def test_create_item_reports_an_existing_item_as_not_created(catalog: CatalogClient) -> None:
    collection = f"test-{uuid.uuid4().hex[:8]}"
    await catalog.ensure_collection(collection)
    item = staged_item(STATION_ITEM, "alice", collection, "b", {"DCS_01_ch1_DSDB_00001.raw": (1, "a" * 32)})
    assert await catalog.create_item(collection, item) is True
    assert await catalog.create_item(collection, item) is False
    assert [found["id"] for found in await catalog.items(collection, [item["id"], "absent"])] == [item["id"]]


async def test_only_the_creating_request_removes_a_collection_and_only_while_it_is_empty(
    catalog: CatalogClient,
) -> None:
    mine, before = f"test-{uuid.uuid4().hex[:8]}", f"test-{uuid.uuid4().hex[:8]}"
    assert await catalog.ensure_collection(mine, created_by="request-a")
    assert await catalog.ensure_collection(before)  # created by no request (as one that existed before)
    assert not await catalog.remove_if_empty(mine, "request-b")
    assert not await catalog.remove_if_empty(before, "request-a")
    item = staged_item(STATION_ITEM, "alice", mine, "b", {"DCS_01_ch1_DSDB_00001.raw": (1, "a" * 32)})
    assert await catalog.create_item(mine, item)  # another request published into it meanwhile
    assert not await catalog.remove_if_empty(mine, "request-a")
    assert (await catalog.items(mine, [item["id"]]))[0]["id"] == item["id"]


async def test_a_publication_into_a_collection_removed_meanwhile_creates_it_again(catalog: CatalogClient) -> None:
    """Request B checked the collection request A had created; A failed and removed it, empty; B publishes."""
    collection = f"test-{uuid.uuid4().hex[:8]}"
    await catalog.ensure_collection(collection, created_by="request-a")
    assert await catalog.remove_if_empty(collection, "request-a")
    item = staged_item(STATION_ITEM, "alice", collection, "b", {"DCS_01_ch1_DSDB_00001.raw": (1, "a" * 32)})
    assert await catalog.create_item(collection, item)
    assert [found["id"] for found in await catalog.items(collection, [item["id"]])] == [item["id"]]


async def test_publication_and_the_staged_check_hold_objects_to_one_rule(
    settings: Settings, catalog: CatalogClient, s3: Any
) -> None:
    """An object is staged when it has the size and MD5 its asset announces: publication refuses the item
    otherwise, and a request finding the published item's object changed since stages it again."""
    owner, collection, name = "alice", f"test-{uuid.uuid4().hex[:8]}", "DCS_01_ch1_DSDB_00001.raw"
    data = b"the staged bytes"
    md5 = hashlib.md5(data).hexdigest()
    station_item = STATION_ITEM | {"id": f"S1A_{uuid.uuid4().hex[:12]}"}
    station_item["assets"] = {
        name: {"href": "http://station/x", "file:size": len(data), "file:checksum": md5_multihash(md5)}
    }
    item_id, bucket = station_item["id"], settings.s3.rs_bucket
    manifest = f"tests/{item_id}.json"
    s3.put_object(Bucket=settings.s3.rs_work_bucket, Key=manifest, Body=json.dumps(station_item).encode())

    def store_object(body: bytes) -> None:
        s3.put_object(
            Bucket=bucket, Key=staged_key(owner, collection, item_id, name), Body=body, Metadata={MD5_METADATA: md5}
        )

    prepare = PrepareStagingInput(owner_id=owner, collection=collection, item_ids=[item_id])
    publish = PublishItemsInput(
        owner_id=owner,
        collection=collection,
        items=[ItemRef(item_id=item_id, manifest_key=manifest, asset_count=1, total_bytes=len(data))],
    )
    async with ObjectStore.open(settings.s3) as store:
        activities = CatalogActivities(catalog, store)
        assert (await activities.prepare_staging(prepare)).existing == []
        store_object(data[:-1])  # one byte short
        left_out = await activities.publish_staged_items(publish)
        assert left_out.unverified == [item_id] and left_out.created == []
        store_object(data)
        assert (await activities.publish_staged_items(publish)).created == [item_id]
        assert (await activities.prepare_staging(prepare)).existing == [item_id]
        store_object(data[:-1])  # changed since publication
        assert (await activities.prepare_staging(prepare)).incomplete == [item_id]
