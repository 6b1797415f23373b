"""Publication of staged station items: each staged object read back from S3 (the station's size and MD5), the
catalog item made of the station item, and a batch inserted in one write (`CatalogActivities.publish_staged_items`)."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

import pystac
from temporalio import activity

from rs_ondemand.activities._staged_objects import StagedObjects, UnverifiedObjectError
from rs_ondemand.activities.manifests import manifest_item
from rs_ondemand.activities.storage import ObjectStore, staged_key
from rs_ondemand.checksums import md5_from_checksum, md5_multihash
from rs_ondemand.dpr.publish import WHOLE_WORLD, WHOLE_WORLD_BBOX
from rs_ondemand.errors import CatalogError
from rs_ondemand.models.publication import PublishItemsInput, PublishItemsResult
from rs_ondemand.models.staging import ItemRef
from rs_ondemand.telemetry import tracer

if TYPE_CHECKING:
    from rs_ondemand.activities.catalog_client import CatalogClient

FILE_EXTENSION = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
CHECKSUM_ORIGIN = "rs:checksum_origin"
"""Asset field saying that `file:checksum` was computed while staging, the station having announced none."""
S3_HREF = re.compile(r"s3://(?P<bucket>[^/]+)/(?P<key>.+)")


def staged_item(
    station_item: dict[str, Any],
    owner_id: str,
    collection: str,
    bucket: str,
    verified: dict[str, tuple[int, str]],
) -> dict[str, Any]:
    """The catalog version of a station item: assets at their `s3://` location with size and checksum."""
    # Migration only for another STAC version: it costs more than the rest of the item's conversion.
    migrate = station_item.get("stac_version") != pystac.get_stac_version()
    item = pystac.Item.from_dict(station_item, preserve_dict=True, migrate=migrate)
    if item.geometry is None:
        item.geometry, item.bbox = WHOLE_WORLD, list(WHOLE_WORLD_BBOX)
    item.clear_links()
    item.collection_id = collection
    item.properties["owner"] = owner_id
    for name, asset in item.assets.items():
        size, md5 = verified[name]
        asset.href = f"s3://{bucket}/{staged_key(owner_id, collection, item.id, name)}"
        asset.extra_fields["file:size"] = size
        if not md5_from_checksum(asset.extra_fields.get("file:checksum")):
            # The station gave none (CADIP stations often do not): ours is the MD5 of the bytes we received.
            asset.extra_fields[CHECKSUM_ORIGIN] = "computed-at-staging"
        asset.extra_fields["file:checksum"] = md5_multihash(md5)
        asset.extra_fields.pop("alternate", None)
    if FILE_EXTENSION not in item.stac_extensions:
        item.stac_extensions.append(FILE_EXTENSION)
    return item.to_dict(include_self_link=False, transform_hrefs=False)


async def staged_objects_intact(store: ObjectStore, items: list[dict[str, Any]]) -> list[bool]:
    """Whether every `s3://` asset of each catalog item is an object of the item's size and MD5 (other hrefs
    are not ours to check)."""
    assets = [
        (index, match, asset)
        for index, item in enumerate(items)
        for asset in item.get("assets", {}).values()
        if (match := S3_HREF.fullmatch(str(asset.get("href", "")))) is not None
    ]
    buckets = {match["bucket"]: StagedObjects(store, match["bucket"]) for _, match, _ in assets}
    for bucket, objects in buckets.items():
        await objects.list([match["key"] for _, match, _ in assets if match["bucket"] == bucket])
    intact = [True] * len(items)

    async def check(index: int, match: re.Match[str], asset: dict[str, Any]) -> None:
        size, md5 = asset.get("file:size"), md5_from_checksum(asset.get("file:checksum"))
        try:
            await buckets[match["bucket"]].verified(match["key"], size if isinstance(size, int) else None, md5)
        except UnverifiedObjectError:
            intact[index] = False

    await asyncio.gather(*(check(*asset) for asset in assets))
    return intact


async def verified_objects(
    store: ObjectStore, request: PublishItemsInput, station_items: list[dict[str, Any]]
) -> list[dict[str, tuple[int, str]] | str]:
    """For each of `station_items`: the size and MD5 of every staged asset read back from S3 (by asset name),
    or, when an asset is missing or its size or MD5 is not the station's, why the item cannot go out."""
    objects = StagedObjects(store, store.settings.rs_bucket)

    def key(item: dict[str, Any], name: str) -> str:
        return staged_key(request.owner_id, request.collection, item["id"], name)

    await objects.list([key(item, name) for item in station_items for name in item.get("assets", {})])

    async def verified(item: dict[str, Any], name: str, asset: dict[str, Any]) -> tuple[int, str]:
        size, md5 = asset.get("file:size"), md5_from_checksum(asset.get("file:checksum"))
        try:
            return await objects.verified(key(item, name), size if isinstance(size, int) else None, md5)
        except UnverifiedObjectError as err:
            raise UnverifiedObjectError(f"asset {name!r} of {item['id']!r} {err}") from None

    async def of_item(item: dict[str, Any]) -> dict[str, tuple[int, str]] | str:
        assets = item.get("assets", {})
        try:
            found = await asyncio.gather(*(verified(item, name, asset) for name, asset in assets.items()))
        except UnverifiedObjectError as err:
            return str(err)
        return dict(zip(assets, found, strict=True))

    return list(await asyncio.gather(*(of_item(item) for item in station_items)))


async def station_items(store: ObjectStore, refs: list[ItemRef]) -> list[dict[str, Any]]:
    """The station items of `refs`, each manifest read once (several items may share one)."""
    keys = list(dict.fromkeys(ref.manifest_key for ref in refs))
    bucket = store.settings.rs_work_bucket
    documents = dict(zip(keys, await asyncio.gather(*(store.get_json(bucket, k) for k in keys)), strict=True))
    return [manifest_item(documents[ref.manifest_key], ref.item_id) for ref in refs]


async def publish_batch(catalog: CatalogClient, store: ObjectStore, request: PublishItemsInput) -> PublishItemsResult:
    """Insert staged items into `request.collection` in one write, those whose every asset is in S3 and verified.
    An item with an asset missing or not the station's is left out and named in `unverified` (its requester
    transfers it again): another request's cleanup may have removed what we wrote, or S3 lost it. Items already
    in the collection (published by an earlier attempt or another request) are left as they are. Safe to retry."""
    with tracer.start_as_current_span("catalog.publish", attributes={"rs.items": len(request.items)}):
        ids = [ref.item_id for ref in request.items]
        existing = {item["id"] for item in await catalog.items(request.collection, ids, owner=request.owner_id)}
        todo = [ref for ref in request.items if ref.item_id not in existing]
        found_items = await station_items(store, todo)
        stored = await verified_objects(store, request, found_items)
        bucket = store.settings.rs_bucket
        unverified: list[str] = []
        items = []
        for item, found in zip(found_items, stored, strict=True):
            if isinstance(found, str):
                activity.logger.warning("not published: %s", found)
                unverified.append(item["id"])
            else:
                items.append(staged_item(item, request.owner_id, request.collection, bucket, found))
        for _ in range(2):
            if not items or await catalog.create_items(request.collection, items, request.owner_id):
                break
            # Someone else inserted some of them meanwhile (a writer outside our publishers): keep theirs.
            present = {item["id"] for item in await catalog.items(request.collection, ids, owner=request.owner_id)}
            existing |= present
            items = [item for item in items if item["id"] not in present]
        else:
            raise CatalogError(f"items of {request.collection!r} kept conflicting with concurrent writes")
    written = [i for i in ids if i not in existing and i not in unverified]
    return PublishItemsResult(created=written, existing=[i for i in ids if i in existing], unverified=unverified)
