"""Publication of processed products (`CatalogActivities.publish_products`): each product's EOPF metadata read
from S3 and made a catalog item of its collection, the items upserted, and the products they replaced deleted."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from rs_ondemand.activities.catalog_client import CatalogClient
from rs_ondemand.activities.storage import ObjectStore, split_s3_url
from rs_ondemand.dpr.publish import ProductMetadataError, collection_for, product_item, stac_discovery_of
from rs_ondemand.models.processor_run import ItemLink, PublishProductsInput, PublishProductsResult, WrittenProduct
from rs_ondemand.telemetry import tracer

log = logging.getLogger(__name__)


async def publish_products(
    catalog: CatalogClient, store: ObjectStore, request: PublishProductsInput
) -> PublishProductsResult:
    """Publish processed products as catalog items (docs/rs-compatibility.md#dpr-publication), all or nothing as far
    as the request goes: every product's metadata is read and mapped to a collection before anything is written, so
    an unknown product type publishes none. An item that exists is replaced: safe to retry.

    A replaced item's old objects (an earlier run's product) are deleted once every new item is in: the
    catalog never points at nothing, and nothing stays in S3 that no item points at. Which objects to delete
    is written to the work bucket first, so a retry after a crash between the two still deletes them."""
    provenance = request.provenance
    if provenance.catalog_url is None:
        provenance = provenance.model_copy(update={"catalog_url": catalog.url})
    stacs = await asyncio.gather(*(product_stac(store, product) for product in request.products))
    items = []
    for product, stac in zip(request.products, stacs, strict=True):
        product_type = (stac.get("properties") or {}).get("product:type")
        collection = collection_for(product.output_id, product_type, request.targets, product_id=stac.get("id"))
        derived_from = request.derived_from_by_unit.get(product.unit or "", provenance.derived_from)
        items.append(
            product_item(
                stac,
                product.path,
                collection=collection,
                owner_id=request.owner_id,
                provenance=provenance.model_copy(update={"derived_from": derived_from}),
            )
        )
    for collection in dict.fromkeys(item["collection"] for item in items):
        await catalog.ensure_collection(collection, request.owner_id, created_by=provenance.workflow_id)
    work, record = store.settings.rs_work_bucket, _replacement_record(request.products)
    recorded = await store.get_json_if_exists(work, record) or []
    stale = set(recorded) | await replaced_products(catalog, store, request, items)
    if stale:
        await store.put_json(work, record, sorted(stale))
    for item in items:
        attributes = {"rs.item": item["id"], "rs.collection": item["collection"]}
        with tracer.start_as_current_span("catalog.publish_product", attributes=attributes):
            await catalog.upsert_item(item["collection"], item, request.owner_id)
    for href in sorted(stale):
        bucket, key = split_s3_url(href)
        await store.delete_prefix(bucket, key.rstrip("/") + "/")  # a Zarr product is a folder
        await store.delete(bucket, key)
    if stale:
        log.info("deleted the %d products the published items replaced: %s", len(stale), sorted(stale))
        await store.delete(work, record)
    return PublishProductsResult(items=[ItemLink(collection=item["collection"], item_id=item["id"]) for item in items])


async def product_stac(store: ObjectStore, product: WrittenProduct) -> dict[str, Any]:
    """EOPF's `stac_discovery` of a written product: Zarr v3 `zarr.json` first, else Zarr v2 `.zattrs`."""
    bucket, key = split_s3_url(product.path)
    for name in ("zarr.json", ".zattrs"):
        document = await store.get_json_if_exists(bucket, f"{key.rstrip('/')}/{name}")
        if document is None:
            continue
        if isinstance(document, dict) and (stac := stac_discovery_of(document)):
            return stac
        raise ProductMetadataError(f"product {product.path} has no stac_discovery in its {name}")
    raise ProductMetadataError(f"product {product.path} has neither zarr.json nor .zattrs: no metadata to publish")


async def replaced_products(
    catalog: CatalogClient, store: ObjectStore, request: PublishProductsInput, items: list[dict[str, Any]]
) -> set[str]:
    """The products the existing items of these ids point at, where the new items do not: an earlier run's
    outputs (only ours: under the owner's folder of the item's collection in the product bucket)."""
    new = {asset["href"] for item in items for asset in item["assets"].values()}
    replaced: set[str] = set()
    for collection in dict.fromkeys(item["collection"] for item in items):
        ids = [item["id"] for item in items if item["collection"] == collection]
        ours = f"s3://{store.settings.rs_bucket}/{request.owner_id}/{collection}/"
        for existing in await catalog.items(collection, ids, owner=request.owner_id):
            hrefs = {str(asset.get("href", "")) for asset in existing.get("assets", {}).values()}
            replaced |= {href for href in hrefs - new if href.startswith(ours)}
    return replaced


def _replacement_record(products: list[WrittenProduct]) -> str:
    """Where the objects a publication replaces are listed until deleted: one key per set of new products."""
    digest = hashlib.sha256("\n".join(sorted(product.path for product in products)).encode()).hexdigest()[:32]
    return f"dpr/replaced/{digest}.json"
