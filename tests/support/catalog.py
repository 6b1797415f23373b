"""What the catalog holds, read through its STAC API; a station's item as staging receives it."""

from __future__ import annotations

import asyncio

from rs_ondemand.activities._stac import open_stac_api
from rs_ondemand.config import Settings

# A CADIP session item as a station announces it: an HTTP asset with an alternate, a self link, no geometry.
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
