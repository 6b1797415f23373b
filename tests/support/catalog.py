"""What the catalog holds, read through its STAC API."""

from __future__ import annotations

import asyncio

from rs_ondemand.activities._stac import open_stac_api
from rs_ondemand.config import Settings


def catalog_ids(settings: Settings, collection: str) -> set[str]:
    """Ids of the items of `collection` (at most 500)."""
    with open_stac_api(settings.catalog.url, 60) as catalog:
        return {item["id"] for item in catalog.search(collections=[collection], limit=500).items_as_dicts()}


async def stac_ids(settings: Settings, collection: str) -> set[str]:
    """`catalog_ids`, or none while the collection does not exist yet."""
    try:
        return await asyncio.to_thread(catalog_ids, settings, collection)
    except Exception:  # the collection is created by the first run that finds something
        return set()
