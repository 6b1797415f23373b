"""The catalog's activities (`CatalogActivities`): collections made and removed, what is staged already, the
catalog's view of staged items, and publication, of staged items (`catalog_publish`) and of processed products
(`catalog_products`), all through `CatalogClient` (`catalog_client`)."""

from __future__ import annotations

import logging

from temporalio import activity

from rs_ondemand.activities import catalog_products
from rs_ondemand.activities.catalog_client import CatalogClient
from rs_ondemand.activities.catalog_publish import publish_batch, staged_objects_intact
from rs_ondemand.activities.storage import ObjectStore
from rs_ondemand.models.processor_run import PublishProductsInput, PublishProductsResult
from rs_ondemand.models.publication import PublishItemsInput, PublishItemsResult
from rs_ondemand.models.staging import (
    CatalogItemRef,
    PrepareStagingInput,
    PrepareStagingResult,
    ReadCatalogItemsInput,
    RemoveCollectionsInput,
)

log = logging.getLogger(__name__)


class CatalogActivities:
    """Activities whose outside system is the STAC catalog (reading S3 only to verify what they publish)."""

    def __init__(self, catalog: CatalogClient, store: ObjectStore) -> None:
        self.catalog = catalog
        self.store = store

    @activity.defn
    async def prepare_staging(self, request: PrepareStagingInput) -> PrepareStagingResult:
        """Create the collection if missing and tell which items are already staged: in the catalog *and* with
        every asset in S3 as the item describes it (the original's idempotence, which trusted the catalog alone:
        an item whose objects were lost, or replaced, would be skipped forever while pointing at nothing)."""
        await self.catalog.ensure_collection(request.collection, request.owner_id, created_by=request.request_id)
        found = await self.catalog.items(request.collection, request.item_ids, owner=request.owner_id)
        intact = await staged_objects_intact(self.store, found)
        broken = sorted(item["id"] for item, ok in zip(found, intact, strict=True) if not ok)
        if broken:
            log.warning(
                "catalog items of %r whose objects are missing or differ, staged again: %s", request.collection, broken
            )
        existing = sorted(item["id"] for item, ok in zip(found, intact, strict=True) if ok)
        return PrepareStagingResult(existing=existing, incomplete=broken)

    @activity.defn
    async def read_catalog_items(self, request: ReadCatalogItemsInput) -> list[CatalogItemRef]:
        """The catalog's version of staged items (the `s3://` hrefs a processor needs), in the given order."""
        items = await self.catalog.items(request.collection, request.ids, owner=request.owner_id)
        by_id = {item["id"]: item for item in items}
        return [
            CatalogItemRef(
                id=item_id,
                collection=request.collection,
                assets={name: asset["href"] for name, asset in by_id[item_id].get("assets", {}).items()},
            )
            for item_id in request.ids
            if item_id in by_id
        ]

    @activity.defn
    async def publish_staged_items(self, request: PublishItemsInput) -> PublishItemsResult:
        """Insert staged items in the catalog in one write, once every asset of every one of them is in S3 and
        verified (`catalog_publish.publish_batch`). Safe to retry."""
        return await publish_batch(self.catalog, self.store, request)

    @activity.defn
    async def remove_empty_collections(self, request: RemoveCollectionsInput) -> list[str]:
        """After a request failed or was cancelled: delete the collections it created that are still empty (never
        one that existed before it, never one holding items, whoever published them). Returns those deleted."""
        removed = [
            c
            for c in request.collections
            if await self.catalog.remove_if_empty(c, request.request_id, request.owner_id)
        ]
        if removed:
            log.info("removed the empty collections request %s had created: %s", request.request_id, removed)
        return removed

    @activity.defn
    async def publish_products(self, request: PublishProductsInput) -> PublishProductsResult:
        """Publish processed products as catalog items, all or nothing as far as the request goes; an item that
        exists is replaced, and the products it pointed at deleted: safe to retry (`catalog_products`)."""
        return await catalog_products.publish_products(self.catalog, self.store, request)
