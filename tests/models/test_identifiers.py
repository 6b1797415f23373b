"""Identifiers: what the boundary accepts, the real catalog accepts (and what it refuses, the boundary refuses)."""

from __future__ import annotations

import string
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from pydantic import ValidationError

from rs_ondemand.activities.catalog_client import CatalogClient
from rs_ondemand.config import Settings
from rs_ondemand.errors import CatalogRejectedError
from rs_ondemand.models.common import MAX_NAME_LENGTH, check_safe_name
from rs_ondemand.models.staging import CadipStagingInput


def accepted(name: str) -> bool:
    try:
        check_safe_name(name)
    except ValueError:
        return False
    return True


@pytest_asyncio.fixture
async def catalog(settings: Settings) -> AsyncIterator[CatalogClient]:
    async with httpx.AsyncClient() as http:
        yield CatalogClient(settings.catalog, http)


def item(item_id: str) -> dict[str, object]:
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": item_id,
        "geometry": {"type": "Point", "coordinates": [0.0, 0.0]},
        "bbox": [0.0, 0.0, 0.0, 0.0],
        "properties": {"datetime": "2024-01-01T00:00:00Z"},
        "links": [],
        "assets": {},
    }


async def catalog_takes(catalog: CatalogClient, name: str, items_of: str) -> tuple[bool, bool]:
    """Whether the catalog creates a collection named `name`, and an item of that id in `items_of`."""
    try:
        await catalog.ensure_collection(name)
        as_collection = True
    except CatalogRejectedError:
        as_collection = False
    try:
        await catalog.create_item(items_of, item(name))
        as_item = True
    except CatalogRejectedError:
        as_item = False
    return as_collection, as_item


async def test_the_identifier_rule_matches_the_catalogs(catalog: CatalogClient) -> None:
    """Every ASCII punctuation mark and a blank, inside a name: the catalog and our rule agree where ours
    accepts; the catalog refuses `:` (and the other URI delimiters) at the end of a request, so we refuse it
    at its start."""
    tag = uuid.uuid4().hex[:8]
    items_of = f"ids-{tag}"
    await catalog.ensure_collection(items_of)
    disagreements = []
    for mark in string.punctuation + " ":
        name = f"{tag}a{mark}b"
        ours = accepted(name)
        as_collection, as_item = await catalog_takes(catalog, name, items_of)
        if ours and not (as_collection and as_item):
            disagreements.append((mark, {"as collection": as_collection, "as item": as_item}))
    assert disagreements == []
    longest = tag + "x" * (MAX_NAME_LENGTH - len(tag))
    assert accepted(longest) and await catalog_takes(catalog, longest, items_of) == (True, True)
    assert not accepted(longest + "x")


@pytest.mark.parametrize("name", ["x:y", "S1A:SESSION", "a+b", "a b", "a/b", "a..b", ".hidden", "-x", ""])
def test_names_the_catalog_or_s3_would_not_take_are_refused_at_the_boundary(name: str) -> None:
    with pytest.raises(ValidationError, match="not a safe identifier"):
        CadipStagingInput.for_session("alice", "S1A_20241114143038056552", name)
