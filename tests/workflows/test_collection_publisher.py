"""`CollectionPublisher`: batches of verified items written into a catalog collection one at a time, whoever
asks, so that concurrent requests never run into pgstac's partition constraint rebuilds (workflow docstring)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from rs_ondemand.activities.catalog_client import CatalogClient
from rs_ondemand.activities.storage import staged_key
from rs_ondemand.activities.temporal import TemporalActivities
from rs_ondemand.checksums import md5_multihash
from rs_ondemand.config import Settings
from rs_ondemand.models.publication import (
    DiscardItemsInput,
    DiscardItemsResult,
    DiscardRequest,
    PublicationRequest,
    PublishItemsInput,
    PublishItemsResult,
)
from rs_ondemand.models.staging import ItemRef
from rs_ondemand.names import collection_publisher_id
from tests.support.cadip_staging import catalog_items
from tests.support.storage import keys_under

OWNER = "publisher"
BATCHES = 6
ITEMS_PER_BATCH = 4


def stage_item(
    s3: Any, settings: Settings, collection: str, item_id: str, day: int, *, verified: bool = True
) -> ItemRef:
    """A station item whose one asset is staged as a transfer leaves it (its verified MD5 as metadata) or, not
    `verified`, as an unfinished one could (other bytes of the same size, no MD5); its manifest in the work
    bucket."""
    body = item_id.encode() * 10
    md5 = hashlib.md5(body).hexdigest()
    key = staged_key(OWNER, collection, item_id, "data.bin")
    stored, metadata = (body, {"md5": md5}) if verified else (bytes(len(body)), {})
    s3.put_object(Bucket=settings.s3.rs_bucket, Key=key, Body=stored, Metadata=metadata)
    station_item = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": item_id,
        "geometry": {"type": "Point", "coordinates": [0.0, 0.0]},
        "bbox": [0.0, 0.0, 0.0, 0.0],
        # Every batch spreads over days the others do not cover: each insert would widen the partition's
        # datetime constraint, what breaks concurrent inserts into one pgstac collection.
        "properties": {"datetime": f"2031-{1 + day // 28:02d}-{1 + day % 28:02d}T00:00:00Z"},
        "links": [],
        "assets": {
            "data.bin": {"href": "http://station/x", "file:size": len(body), "file:checksum": md5_multihash(md5)}
        },
    }
    manifest = f"requests/test-publisher/{collection}/{item_id}.json"
    s3.put_object(Bucket=settings.s3.rs_work_bucket, Key=manifest, Body=json.dumps(station_item).encode())
    return ItemRef(item_id=item_id, manifest_key=manifest, asset_count=1, total_bytes=len(body))


def publication(collection: str, items: list[ItemRef], task_queue: str, attempts: int = 1) -> PublicationRequest:
    return PublicationRequest(
        publish=PublishItemsInput(owner_id=OWNER, collection=collection, items=items),
        step_attempts=attempts,
        update_id=f"test-{uuid.uuid4()}",
        task_queue=task_queue,
    )


async def new_collection(settings: Settings) -> str:
    """A new, empty collection, as a staging request's first step leaves it."""
    collection = f"test-pub-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient() as http:
        assert await CatalogClient(settings.catalog, http).ensure_collection(collection)
    return collection


async def publish(client: Client, request: PublicationRequest) -> PublishItemsResult:
    return await ActivityEnvironment(client).run(TemporalActivities().publish_in_collection, request)


async def test_concurrent_batches_into_a_new_collection_are_written_one_at_a_time(
    client: Client, task_queue: str, settings: Settings, s3: Any
) -> None:
    """Six batches handed over at once, each widening the datetime range, one attempt each (a write refused by
    the catalog would fail its batch): every batch is published, and the publisher's writes never overlapped."""
    collection = await new_collection(settings)
    batches = [
        [stage_item(s3, settings, collection, f"item-{b}-{i}", b * 37 + i * 5) for i in range(ITEMS_PER_BATCH)]
        for b in range(BATCHES)
    ]
    results = await asyncio.gather(*(publish(client, publication(collection, b, task_queue)) for b in batches))

    assert [sorted(r.created) for r in results] == [sorted(ref.item_id for ref in b) for b in batches]
    found = catalog_items(settings.catalog.url, collection)
    assert sorted(item["id"] for item in found) == sorted(ref.item_id for b in batches for ref in b)
    asset = found[0]["assets"]["data.bin"]
    assert asset["href"].startswith(f"s3://{settings.s3.rs_bucket}/{OWNER}/{collection}/")

    # One publisher for the collection; its writes (activities) one after the other, never two at once.
    events = [e async for e in client.get_workflow_handle(collection_publisher_id(collection)).fetch_history_events()]
    kinds = [e.event_type for e in events]
    scheduled = [i for i, k in enumerate(kinds) if k == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    completed = [i for i, k in enumerate(kinds) if k == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
    assert len(scheduled) == len(completed) == BATCHES
    assert all(done < following for done, following in zip(completed, scheduled[1:], strict=False))


async def test_a_batch_published_again_is_left_as_it_is(
    client: Client, task_queue: str, settings: Settings, s3: Any
) -> None:
    collection = await new_collection(settings)
    items = [stage_item(s3, settings, collection, f"again-{i}", i) for i in range(3)]
    first = await publish(client, publication(collection, items[:2], task_queue))
    second = await publish(client, publication(collection, items, task_queue))
    assert sorted(first.created) == ["again-0", "again-1"] and first.existing == []
    assert second.created == ["again-2"] and sorted(second.existing) == ["again-0", "again-1"]
    assert len(catalog_items(settings.catalog.url, collection)) == 3


async def test_a_batch_with_an_unverified_asset_publishes_the_others_and_names_it(
    client: Client, task_queue: str, settings: Settings, s3: Any
) -> None:
    """One object that is not the station's file (removed and rewritten by another request, or a transfer that did
    not finish): that item is left out of the write and named, for its requester to transfer again; the verified
    items of the batch are published."""
    collection = await new_collection(settings)
    items = [stage_item(s3, settings, collection, f"ok-{i}", i) for i in range(2)]
    items.append(stage_item(s3, settings, collection, "unverified", 3, verified=False))
    result = await publish(client, publication(collection, items, task_queue))
    assert sorted(result.created) == ["ok-0", "ok-1"] and result.unverified == ["unverified"]
    assert sorted(item["id"] for item in catalog_items(settings.catalog.url, collection)) == ["ok-0", "ok-1"]


async def test_a_cleanup_runs_between_writes_and_never_removes_what_the_catalog_points_at(
    client: Client, task_queue: str, settings: Settings, s3: Any
) -> None:
    """Two requests staged the same items into one collection (the same objects); one publishes them while the
    other, cancelled, cleans up at the same moment. Whichever the publisher takes first, the catalog never points
    at a removed object: a cleanup after the write keeps the published items, one before it leaves them out of
    the write (their requester transfers them again). The cleanups and the writes never overlapped."""
    collection = await new_collection(settings)
    pairs = 3
    batches = [
        [stage_item(s3, settings, collection, f"shared-{p}-{i}", p * 9 + i) for i in range(2)] for p in range(pairs)
    ]

    async def clean_up(batch: list[ItemRef]) -> DiscardItemsResult:
        discard = DiscardItemsInput(owner_id=OWNER, collection=collection, item_ids=[ref.item_id for ref in batch])
        request = DiscardRequest(discard=discard, update_id=f"test-{uuid.uuid4()}", task_queue=task_queue)
        return await ActivityEnvironment(client).run(TemporalActivities().discard_in_collection, request)

    outcomes = await asyncio.gather(
        *(publish(client, publication(collection, batch, task_queue)) for batch in batches),
        *(clean_up(batch) for batch in batches),
    )
    for result, batch in zip(outcomes[:pairs], batches, strict=True):
        assert isinstance(result, PublishItemsResult)
        assert sorted(result.created + result.unverified) == sorted(ref.item_id for ref in batch)
    in_catalog = {item["id"] for item in catalog_items(settings.catalog.url, collection)}
    stored = set(keys_under(s3, settings.s3.rs_bucket, f"{OWNER}/{collection}/"))
    for ref in (ref for batch in batches for ref in batch):
        assert (ref.item_id in in_catalog) == (staged_key(OWNER, collection, ref.item_id, "data.bin") in stored)

    events = [e async for e in client.get_workflow_handle(collection_publisher_id(collection)).fetch_history_events()]
    kinds = [e.event_type for e in events]
    scheduled = [i for i, k in enumerate(kinds) if k == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    completed = [i for i, k in enumerate(kinds) if k == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
    assert len(scheduled) == len(completed) == 2 * pairs
    assert all(done < following for done, following in zip(completed, scheduled[1:], strict=False))
