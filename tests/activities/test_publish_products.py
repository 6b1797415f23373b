"""Publishing processed products against the real stack: Zarr metadata in S3, items in pgstac."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from rs_ondemand.activities.catalog import CatalogActivities
from rs_ondemand.activities.catalog_client import CatalogClient
from rs_ondemand.activities.storage import ObjectStore
from rs_ondemand.config import Settings
from rs_ondemand.dpr.publish import ProductMetadataError, ProductTypeUnknownError
from rs_ondemand.models.processor_run import (
    ItemLink,
    Provenance,
    PublishProductsInput,
    PublishProductsResult,
    WrittenProduct,
)

SESSION = ItemLink(collection="s1-cadip", item_id="S1A_20241114143038056552")
RESORB = ItemLink(collection="s1-aux", item_id="S1A_OPER_AUX_RESORB_OPOD_20241114T150000")
DERIVED_FROM = [SESSION, RESORB]


@pytest_asyncio.fixture(loop_scope="session")
async def activities(settings: Settings) -> AsyncIterator[CatalogActivities]:
    async with httpx.AsyncClient() as http, ObjectStore.open(settings.s3) as store:
        yield CatalogActivities(CatalogClient(settings.catalog, http), store)


def stac_discovery(product_id: str, product_type: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": product_id,
        "geometry": None,
        "bbox": None,
        "properties": {
            "product:type": product_type,
            "platform": "sentinel-1a",
            "datetime": "2024-11-14T14:30:38.477000Z",
            "start_datetime": "2024-11-14T14:30:38.477000Z",
            "end_datetime": "2024-11-14T14:33:22.662000Z",
            "processing:software": {"rs_demo_processor": "0.1.0"},
        }
        | properties,
    }


def write_product(s3: Any, settings: Settings, output_dir: str, stac: dict[str, Any], zarr_format: int = 3) -> str:
    """A product's root metadata only (all publication reads): `zarr.json` for Zarr v3, `.zattrs` for v2."""
    bucket, key = settings.s3.rs_bucket, f"{output_dir}/{stac['id']}.zarr"
    if zarr_format == 3:
        name, document = "zarr.json", {"zarr_format": 3, "node_type": "group", "attributes": {"stac_discovery": stac}}
    else:
        name, document = ".zattrs", {"stac_discovery": stac, "other_metadata": {}}
    s3.put_object(Bucket=bucket, Key=f"{key}/{name}", Body=json.dumps(document).encode())
    return f"s3://{bucket}/{key}"


def request(owner: str, products: list[WrittenProduct], targets: dict[str, list[tuple[str, str]]]) -> Any:
    provenance = Provenance(
        workflow_id=f"dpr/{owner}/demo",
        processor_name="demo",
        processor_version="0.2.0",
        processed_at="2024-11-15T10:00:00Z",
        derived_from=DERIVED_FROM,
    )
    return PublishProductsInput(owner_id=owner, products=products, targets=targets, provenance=provenance)


async def publish(activities: CatalogActivities, publish_input: PublishProductsInput) -> PublishProductsResult:
    result: PublishProductsResult = await ActivityEnvironment().run(activities.publish_products, publish_input)
    return result


def catalog_items(settings: Settings, collection: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{settings.catalog.url.rstrip('/')}/collections/{collection}/items", timeout=30)
    if response.status_code == 404:
        return []
    response.raise_for_status()
    features: list[dict[str, Any]] = response.json()["features"]
    return features


async def test_products_are_published_from_zarr_v3_and_v2_metadata_and_republished_in_place(
    activities: CatalogActivities, settings: Settings, s3: Any, collection: str
) -> None:
    owner = f"test-{uuid.uuid4().hex[:8]}"
    output_dir = f"{owner}/{collection}/run-1"
    v3 = write_product(s3, settings, output_dir, stac_discovery(f"S01DEMOL0_{uuid.uuid4().hex[:6]}", "S01DEMOL0"))
    v2 = write_product(s3, settings, output_dir, stac_discovery(f"S01DEMOL1_{uuid.uuid4().hex[:6]}", "s01demol1"), 2)
    products = [WrittenProduct(output_id="DEMOL0", path=v3), WrittenProduct(output_id="DEMOL1", path=v2)]
    targets = {"DEMOL0": [("S01DEMOL0", collection)], "DEMOL1": [("S01DEMOL1", collection)]}

    result = await publish(activities, request(owner, products, targets))

    ids = [path.rsplit("/", 1)[1].removesuffix(".zarr") for path in (v3, v2)]
    assert result.items == [ItemLink(collection=collection, item_id=item_id) for item_id in ids]
    items = {item["id"]: item for item in catalog_items(settings, collection)}
    assert sorted(items) == sorted(ids)
    for item_id, path in zip(ids, (v3, v2), strict=True):
        item = items[item_id]
        assert item["collection"] == collection
        assert item["assets"][f"{item_id}.zarr"]["href"] == path
        assert item["assets"][f"{item_id}.zarr"]["type"] == "application/vnd+zarr"
        derived = sorted(link["href"] for link in item["links"] if link["rel"] == "derived_from")
        base = settings.catalog.url.rstrip("/")
        assert derived == sorted(f"{base}/collections/{ref.collection}/items/{ref.item_id}" for ref in DERIVED_FROM)
        properties = item["properties"]
        assert properties["owner"] == owner and properties["platform"] == "sentinel-1a"
        assert properties["processing:software"] == {"rs_demo_processor": "0.1.0", "demo": "0.2.0"}
        assert properties["processing:lineage"] == f"rs-ondemand DprProcessing dpr/{owner}/demo"
        assert properties["datetime"].startswith("2024-11-14T14:30:38.477")
        assert item["geometry"]["type"] == "Polygon"

    # A redone run publishes the same product again: still one item, with the new metadata.
    write_product(s3, settings, output_dir, stac_discovery(ids[0], "S01DEMOL0", platform="sentinel-1c"))
    await publish(activities, request(owner, products[:1], targets))
    items = {item["id"]: item for item in catalog_items(settings, collection)}
    assert sorted(items) == sorted(ids)
    assert items[ids[0]]["properties"]["platform"] == "sentinel-1c"


async def test_an_unknown_product_type_publishes_nothing(
    activities: CatalogActivities, settings: Settings, s3: Any, collection: str
) -> None:
    owner = f"test-{uuid.uuid4().hex[:8]}"
    output_dir = f"{owner}/{collection}/run-1"
    known = write_product(s3, settings, output_dir, stac_discovery(f"S01DEMOL0_{uuid.uuid4().hex[:6]}", "S01DEMOL0"))
    unknown = write_product(s3, settings, output_dir, stac_discovery(f"S01XYZ_{uuid.uuid4().hex[:6]}", "S01XYZ"))
    products = [WrittenProduct(output_id="DEMOL0", path=known), WrittenProduct(output_id="DEMOL0", path=unknown)]
    await activities.catalog.ensure_collection(collection)  # so that an empty listing means "no item"

    with pytest.raises(ProductTypeUnknownError, match="has product:type 'S01XYZ'"):
        await publish(activities, request(owner, products, {"DEMOL0": [("S01DEMOL0", collection)]}))
    assert catalog_items(settings, collection) == []


async def test_a_product_without_metadata_is_a_clear_error_naming_its_path(
    activities: CatalogActivities, settings: Settings, collection: str
) -> None:
    path = f"s3://{settings.s3.rs_bucket}/nobody/{collection}/run-1/S01DEMOL0_MISSING.zarr"
    with pytest.raises(ProductMetadataError, match=f"{path} has neither zarr.json nor .zattrs"):
        await publish(activities, request("nobody", [WrittenProduct(output_id="DEMOL0", path=path)], {}))


def objects_under(s3: Any, settings: Settings, prefix: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=settings.s3.rs_bucket, Prefix=prefix)
    return sorted(entry["Key"] for entry in listed.get("Contents", []))


async def test_a_rerun_replaces_the_item_and_removes_what_the_old_one_pointed_at(
    activities: CatalogActivities, settings: Settings, s3: Any, collection: str
) -> None:
    """Issue 14: each run writes to a folder of its own; republishing a product moves its item to the new run's
    objects and deletes the previous run's, so nothing is left in S3 that no item references."""
    owner = f"test-{uuid.uuid4().hex[:8]}"
    product_id = f"S01DEMOL0_{uuid.uuid4().hex[:6]}"
    targets = {"DEMOL0": [("S01DEMOL0", collection)]}
    first = write_product(s3, settings, f"{owner}/{collection}/run-1", stac_discovery(product_id, "S01DEMOL0"))
    await publish(activities, request(owner, [WrittenProduct(output_id="DEMOL0", path=first)], targets))
    other_owner = f"{owner}-other/{collection}/run-1"  # not this owner's: never touched
    untouched = write_product(s3, settings, other_owner, stac_discovery(product_id, "S01DEMOL0"))

    second = write_product(s3, settings, f"{owner}/{collection}/run-2", stac_discovery(product_id, "S01DEMOL0"))
    await publish(activities, request(owner, [WrittenProduct(output_id="DEMOL0", path=second)], targets))

    (item,) = catalog_items(settings, collection)
    assert item["assets"][f"{product_id}.zarr"]["href"] == second
    assert objects_under(s3, settings, f"{owner}/{collection}/run-1/") == []
    assert objects_under(s3, settings, f"{owner}/{collection}/run-2/") == [
        f"{owner}/{collection}/run-2/{product_id}.zarr/zarr.json"
    ]
    assert objects_under(s3, settings, untouched.removeprefix(f"s3://{settings.s3.rs_bucket}/")) != []
    # Nothing left to delete, and no record of it either.
    listed = s3.list_objects_v2(Bucket=settings.s3.rs_work_bucket, Prefix="dpr/replaced/")
    assert listed.get("KeyCount", 0) == 0


async def test_each_product_links_to_what_its_unit_read_through_the_chain(
    activities: CatalogActivities, settings: Settings, s3: Any, collection: str
) -> None:
    owner = f"test-{uuid.uuid4().hex[:8]}"
    output_dir = f"{owner}/{collection}/run-1"
    l1 = write_product(s3, settings, output_dir, stac_discovery(f"S01DEMOL1_{uuid.uuid4().hex[:6]}", "S01DEMOL1"))
    other = write_product(s3, settings, output_dir, stac_discovery(f"S01DEMOL0_{uuid.uuid4().hex[:6]}", "S01DEMOL0"))
    products = [
        WrittenProduct(output_id="DEMOL1", path=l1, unit="DemoL1Unit.2"),
        WrittenProduct(output_id="DEMOL0", path=other, unit="SomeUnit.9"),  # no entry: the request's sources
    ]
    publish_input = request(owner, products, {"DEMOL1": [("*", collection)], "DEMOL0": [("*", collection)]})
    publish_input.derived_from_by_unit = {"DemoL1Unit.2": [SESSION]}

    await publish(activities, publish_input)

    base = settings.catalog.url.rstrip("/")
    links = {
        item["assets"][next(iter(item["assets"]))]["href"]: sorted(
            link["href"] for link in item["links"] if link["rel"] == "derived_from"
        )
        for item in catalog_items(settings, collection)
    }
    assert links[l1] == [f"{base}/collections/{SESSION.collection}/items/{SESSION.item_id}"]
    assert links[other] == sorted(f"{base}/collections/{r.collection}/items/{r.item_id}" for r in DERIVED_FROM)
