"""Publishing processed products, the pure part: collection resolution and the catalog item of a product."""

from __future__ import annotations

import copy
from typing import Any

import pystac
import pytest

from rs_ondemand.dpr.publish import (
    PROCESSING_EXTENSION,
    WHOLE_WORLD,
    ProductMetadataError,
    ProductTypeUnknownError,
    collection_for,
    derived_from_by_unit,
    product_item,
    stac_discovery_of,
)
from rs_ondemand.dpr.registry import get_tasktable
from rs_ondemand.dpr.units import build_unit_list
from rs_ondemand.errors import InvalidInputError
from rs_ondemand.models.dpr import AdfItem, UnitResolution
from rs_ondemand.models.processor_run import ItemLink, Provenance

PRODUCT_ID = "S01DEMOL0_20241114T143038_0164_A117_T953"
PATH = f"s3://rs-bucket/alice/s1-demo-l0/run-1/{PRODUCT_ID}.zarr"
# The demo processor's stac_discovery (tests/processors/test_processor_runs.py, assert_demo_product).
STAC: dict[str, Any] = {
    "type": "Feature",
    "stac_version": "1.1.0",
    "id": PRODUCT_ID,
    "geometry": None,
    "bbox": None,
    "properties": {
        "product:type": "S01DEMOL0",
        "platform": "sentinel-1a",
        "constellation": "sentinel-1",
        "datetime": "2024-11-14T14:30:38.477000Z",
        "start_datetime": "2024-11-14T14:30:38.477000Z",
        "end_datetime": "2024-11-14T14:33:22.662000Z",
        "sat:absolute_orbit": 56552,
        "processing:level": "L0",
        "processing:software": {"rs_demo_processor": "0.1.0"},
    },
}
PROVENANCE = Provenance(
    workflow_id="dpr/alice/demo/1",
    processor_name="demo",
    processor_version="0.2.0",
    processed_at="2024-11-15T10:00:00Z",
    derived_from=[
        ItemLink(collection="s1-cadip", item_id="S1A_20241114143038056552"),
        ItemLink(collection="s1-aux", item_id="S1A_OPER_AUX_RESORB_OPOD_20241114T150000"),
    ],
    catalog_url="http://catalog:8082/",
)
TARGETS = {"DEMOL0": [("S01DEMOL0", "s1-demo-l0"), ("S01DEMOL0", "elsewhere")], "OTHER": [("S01OTHER", "s1-other")]}


def test_collection_for_matches_the_output_entries_case_insensitively() -> None:
    assert collection_for("DEMOL0", "S01DEMOL0", TARGETS) == "s1-demo-l0"  # the first of two matches
    assert collection_for("DEMOL0", "s01demol0", TARGETS) == "s1-demo-l0"
    assert collection_for("OTHER", "S01Other", TARGETS) == "s1-other"


def test_collection_for_falls_back_to_any_output_only_for_an_unmapped_output() -> None:
    assert collection_for("NOT_IN_MAP", "S01OTHER", TARGETS) == "s1-other"
    with pytest.raises(ProductTypeUnknownError):  # the output is mapped, to other types
        collection_for("DEMOL0", "S01OTHER", TARGETS)


def test_collection_for_takes_a_wildcard_type_after_exact_ones() -> None:
    targets = {"L0": [("*", "s1-any"), ("S01DEMOL0", "s1-demo-l0")]}
    assert collection_for("L0", "S01DEMOL0", targets) == "s1-demo-l0"
    assert collection_for("L0", "S01XYZ", targets) == "s1-any"


def test_unknown_product_type_names_product_type_output_and_mapped_types() -> None:
    with pytest.raises(ProductTypeUnknownError) as raised:
        collection_for("DEMOL0", "S01XYZ", TARGETS, product_id=PRODUCT_ID)
    assert isinstance(raised.value, InvalidInputError) and raised.value.non_retryable
    assert str(raised.value) == (
        f"Product type unknown: product {PRODUCT_ID!r} of output 'DEMOL0' has product:type 'S01XYZ', "
        "but generated_product_to_collection_identifier maps only ['S01DEMOL0', 'S01DEMOL0']"
    )
    with pytest.raises(ProductTypeUnknownError, match="product:type None"):
        collection_for("DEMOL0", None, TARGETS)


def test_stac_discovery_is_read_from_zarr_v3_and_v2_metadata() -> None:
    assert stac_discovery_of({"zarr_format": 3, "node_type": "group", "attributes": {"stac_discovery": STAC}}) == STAC
    assert stac_discovery_of({"stac_discovery": STAC, "other_metadata": {}}) == STAC
    assert stac_discovery_of({"zarr_format": 3, "node_type": "group", "attributes": {}}) is None


def test_product_item_is_the_products_stac_with_asset_owner_and_provenance() -> None:
    item = product_item(STAC, PATH, collection="s1-demo-l0", owner_id="alice", provenance=PROVENANCE)

    assert item["id"] == PRODUCT_ID and item["collection"] == "s1-demo-l0" and item["stac_version"] == "1.1.0"
    assert item["assets"] == {
        f"{PRODUCT_ID}.zarr": {
            "href": PATH,
            "type": "application/vnd+zarr",
            "title": f"{PRODUCT_ID}.zarr",
            "roles": ["data", "metadata"],
        }
    }
    properties = item["properties"]
    assert properties == STAC["properties"] | {
        "owner": "alice",
        "processing:lineage": "rs-ondemand DprProcessing dpr/alice/demo/1",
        "processing:software": {"rs_demo_processor": "0.1.0", "demo": "0.2.0"},
        "processing:datetime": "2024-11-15T10:00:00Z",
    }
    assert PROCESSING_EXTENSION in item["stac_extensions"]
    assert [(link["rel"], link["href"]) for link in item["links"]] == [
        ("derived_from", "http://catalog:8082/collections/s1-cadip/items/S1A_20241114143038056552"),
        ("derived_from", "http://catalog:8082/collections/s1-aux/items/S1A_OPER_AUX_RESORB_OPOD_20241114T150000"),
    ]
    assert item["geometry"] == WHOLE_WORLD and item["bbox"] == [-180.0, -90.0, 180.0, 90.0]
    assert pystac.Item.from_dict(item).datetime == pystac.utils.str_to_datetime("2024-11-14T14:30:38.477Z")
    assert STAC["properties"]["processing:software"] == {"rs_demo_processor": "0.1.0"}  # the input is not changed


def test_product_item_keeps_a_footprint_and_takes_start_datetime_without_datetime() -> None:
    stac = copy.deepcopy(STAC)
    stac["geometry"] = {"type": "Polygon", "coordinates": [[[10, 40], [12, 40], [12, 43.5], [10, 43.5], [10, 40]]]}
    del stac["properties"]["datetime"], stac["properties"]["processing:software"]
    item = product_item(stac, PATH, collection="c", owner_id="bob", provenance=PROVENANCE)
    assert item["geometry"] == stac["geometry"] and item["bbox"] == [10, 40, 12, 43.5]  # computed: EOPF gave none
    assert item["properties"]["datetime"] == "2024-11-14T14:30:38.477000Z"
    assert item["properties"]["processing:software"] == {"demo": "0.2.0"}


def test_product_item_without_any_datetime_is_refused() -> None:
    stac = copy.deepcopy(STAC)
    stac["properties"] = {"product:type": "S01DEMOL0"}
    with pytest.raises(ProductMetadataError, match=PATH):
        product_item(stac, PATH, collection="c", owner_id="bob", provenance=PROVENANCE)


def test_provenance_follows_the_chain() -> None:
    """demo_chain: the L1 derives from its own ADF and the L0's inputs; each quicklook from what its source did."""
    units = build_unit_list(
        get_tasktable("demo"), "demo_chain", None, None, external_variables={"start_datetime": "2024-11-14"}
    )
    session = AdfItem(collection="s1-cadip", id="S1A")
    orbit, pp2 = AdfItem(collection="s1-aux", id="ORB"), AdfItem(collection="s1-aux", id="PP2")
    resolutions = [
        UnitResolution(name="DemoL0Unit.1", input_items=[session], adfs={"ORBIT": [orbit]}),
        UnitResolution(name="DemoL1Unit.2", adfs={"PP2": [pp2], "OTHER": [AdfItem(hrefs=["s3://b/no-item"])]}),
        UnitResolution(name="DemoQuicklookUnit.3"),
        UnitResolution(name="DemoQuicklookUnit.4"),
    ]
    links = derived_from_by_unit(units, resolutions)

    def ids(unit: str) -> list[str]:
        return [link.item_id for link in links[unit]]

    assert sorted(ids("DemoL0Unit.1")) == ["ORB", "S1A"]
    assert sorted(ids("DemoL1Unit.2")) == ["ORB", "PP2", "S1A"]
    assert sorted(ids("DemoQuicklookUnit.3")) == ["ORB", "S1A"]
    assert sorted(ids("DemoQuicklookUnit.4")) == ["ORB", "PP2", "S1A"]
