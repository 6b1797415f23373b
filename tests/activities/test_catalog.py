"""Catalog publication: the staged item's shape, collection creation and 409 handling against pgstac."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pystac
import pytest_asyncio

from rs_ondemand.activities.catalog import CatalogClient, staged_item
from rs_ondemand.config import Settings

STATION_ITEM = {
    "type": "Feature",
    "stac_version": "1.1.0",
    "id": "S1A_20240101000000000001",
    "geometry": None,
    "properties": {"datetime": "2024-01-01T00:00:00Z", "platform": "sentinel-1a"},
    "links": [{"rel": "self", "href": "http://station/cadip/stac/collections/cadip/items/x"}],
    "assets": {
        "DCS_01_ch1_DSDB_00001.raw": {
            "href": "http://station/cadip/Files(1)/$value",
            "roles": ["cadu"],
            "alternate": {"s3": {"href": "s3://elsewhere"}},
        }
    },
}


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
