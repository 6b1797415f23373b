"""Request manifests in the work bucket: the pages of a station search (each item with its reference) and the
transfers planned from them."""

from __future__ import annotations

from typing import Any

from rs_ondemand.activities.storage import ObjectStore, manifest_prefix, staged_key
from rs_ondemand.checksums import md5_from_checksum
from rs_ondemand.errors import InvalidInputError
from rs_ondemand.models.common import check_safe_name
from rs_ondemand.models.staging import (
    AssetTransfer,
    ItemRef,
    PageList,
    PageRef,
    TransferPage,
    TransferPageInput,
)


def manifest_item(document: Any, item_id: str) -> dict[str, Any]:
    """Station item `item_id` out of the manifest an `ItemRef` names: a page of entries each holding its item,
    or (as searches wrote them before pages held the items) the item alone."""
    if isinstance(document, list):
        for entry in document:
            if entry.get("item_id") == item_id and isinstance(entry.get("item"), dict):
                return dict(entry["item"])
        raise InvalidInputError(f"item {item_id!r} is not in its manifest page")
    return dict(document)


def _asset_transfer(
    owner_id: str, collection: str, item_id: str, name: str, asset: dict[str, Any], bucket: str
) -> AssetTransfer:
    """Where one station asset goes; station-given names are checked before they become S3 keys."""
    try:
        check_safe_name(name)
    except ValueError as err:
        raise InvalidInputError(f"item {item_id!r} has an asset name unusable as an S3 key: {err}") from err
    href = asset.get("href")
    if not isinstance(href, str) or not href.startswith(("http://", "https://")):
        raise InvalidInputError(f"asset {name!r} of item {item_id!r} has no downloadable href: {href!r}")
    size = asset.get("file:size")
    return AssetTransfer(
        item_id=item_id,
        asset_name=name,
        href=href,
        size=size if isinstance(size, int) else None,
        md5=md5_from_checksum(asset.get("file:checksum")),
        bucket=bucket,
        key=staged_key(owner_id, collection, item_id, name),
    )


async def store_search_page(store: ObjectStore, request_id: str, number: int, items: list[dict[str, Any]]) -> PageRef:
    """Keep one result page of a station search in the work bucket: one document holding each item with its
    reference (`ItemRef`, whose manifest is this page), so staging reads a page in one request, not one per
    item. Station-given ids are checked before they become S3 keys."""
    key = f"{manifest_prefix(request_id)}pages/{number:06d}.json"
    entries = []
    for item in items:
        item_id = item.get("id", "")
        try:
            check_safe_name(item_id)
        except ValueError as err:
            raise InvalidInputError(f"the station returned an item id unusable as an S3 key: {err}") from err
        assets = item.get("assets", {})
        size = sum(a.get("file:size", 0) for a in assets.values() if isinstance(a.get("file:size"), int))
        ref = ItemRef(item_id=item_id, manifest_key=key, asset_count=len(assets), total_bytes=size)
        entries.append(ref.model_dump() | {"item": item})
    await store.put_json(store.settings.rs_work_bucket, key, entries)
    return PageRef(
        key=key,
        items=len(entries),
        assets=sum(e["asset_count"] for e in entries),
        bytes=sum(e["total_bytes"] for e in entries),
    )


async def store_page_list(store: ObjectStore, request_id: str, pages: list[PageRef]) -> PageList:
    """Keep the references of a search's pages in the work bucket, beside the pages (removed with them)."""
    key = f"{manifest_prefix(request_id)}page-list.json"
    await store.put_json(store.settings.rs_work_bucket, key, [page.model_dump() for page in pages])
    return PageList(key=key, pages=len(pages))


async def asset_transfers(store: ObjectStore, page: TransferPageInput) -> TransferPage:
    """A window of the transfers of some items (their assets to their staged locations); only the manifests of
    the items the window touches are read."""
    end = page.offset + page.limit
    transfers: list[AssetTransfer] = []
    first = 0  # index of the item's first asset among all pairs
    documents: dict[str, Any] = {}
    for ref in page.items:
        last = first + ref.asset_count
        if last > page.offset and first < end:
            if ref.manifest_key not in documents:
                documents[ref.manifest_key] = await store.get_json(store.settings.rs_work_bucket, ref.manifest_key)
            assets = manifest_item(documents[ref.manifest_key], ref.item_id).get("assets", {})
            for name in sorted(assets)[max(0, page.offset - first) : end - first]:
                transfers.append(
                    _asset_transfer(
                        page.owner_id, page.collection, ref.item_id, name, assets[name], store.settings.rs_bucket
                    )
                )
        first = last
        if first >= end:
            break
    total = sum(ref.asset_count for ref in page.items)
    return TransferPage(transfers=transfers, next_offset=end if end < total else None)
