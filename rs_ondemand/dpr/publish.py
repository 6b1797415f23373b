"""Publishing processed products (pure): which collection a product goes to, and its catalog item.

The original (docs/rs-compatibility.md#dpr-publication) publishes each EOPF product's own `stac_discovery` as a STAC
item whose one asset is the Zarr product; here the item also records where it comes from (processing extension,
`derived_from` links) and who owns it, as the staged items do.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pystac
from pystac.utils import str_to_datetime

from rs_ondemand.errors import InvalidInputError
from rs_ondemand.models.dpr import UnitResolution
from rs_ondemand.models.processor_run import ItemLink, Provenance

PROCESSING_EXTENSION = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
ZARR_MEDIA_TYPE = "application/vnd+zarr"
WHOLE_WORLD = {
    "type": "Polygon",
    "coordinates": [[[-180.0, -90.0], [180.0, -90.0], [180.0, 90.0], [-180.0, 90.0], [-180.0, -90.0]]],
}
"""Geometry of items that come without one (CADIP sessions, EOPF products without a footprint): pgstac requires
a geometry, and RS uses the whole world for sessions (docs/rs-compatibility.md#staging-publication). Defined
here, in the pure module, so that the catalog activities can import it without an import cycle."""
WHOLE_WORLD_BBOX = [-180.0, -90.0, 180.0, 90.0]


def derived_from_by_unit(units: list[dict[str, Any]], resolutions: list[UnitResolution]) -> dict[str, list[ItemLink]]:
    """`{unit id: catalog items}`: the request's input products and ADFs a unit read, and those of every unit
    whose product it read, through the chain (a quicklook of an L1 derives from the L1's ADFs and the L0's
    inputs). An ADF the request gave as an S3 object has no item to link to."""
    direct = {
        resolution.name: {
            (item.collection, item.id)
            for item in [*resolution.input_items, *(i for items in resolution.adfs.values() for i in items)]
            if item.collection and item.id
        }
        for resolution in resolutions
    }
    upstream = {
        str(unit.get("id") or unit["name"]): [
            str(entry["reference"]).rpartition(".")[0]
            for entry in unit.get("input_products", [])
            if entry.get("reference")
        ]
        for unit in units
    }

    def sources(unit_id: str, seen: frozenset[str]) -> set[tuple[str, str]]:
        found = set(direct.get(unit_id, set()))
        for producer in upstream.get(unit_id, []):
            if producer not in seen:
                found |= sources(producer, seen | {producer})
        return found

    return {
        unit_id: [ItemLink(collection=c, item_id=i) for c, i in sorted(sources(unit_id, frozenset({unit_id})))]
        for unit_id in upstream
    }


class ProductTypeUnknownError(InvalidInputError):
    """A written product's `product:type` is not mapped to a collection by the request: publishing it anywhere
    would be a guess, and a retry maps it no better (the original's "Product type unknown")."""

    def __init__(self, product_id: str | None, product_type: str | None, output_id: str, mapped: list[str]) -> None:
        super().__init__(
            f"Product type unknown: product {product_id!r} of output {output_id!r} has product:type "
            f"{product_type!r}, but generated_product_to_collection_identifier maps only {mapped}"
        )


class ProductMetadataError(InvalidInputError):
    """A written product lacks the EOPF metadata its item is made of (no `stac_discovery`, no datetime)."""


def collection_for(
    output_id: str,
    product_type: str | None,
    targets: dict[str, list[tuple[str, str]]],
    *,
    product_id: str | None = None,
) -> str:
    """The collection of a product of `output_id` with `product_type`, from the request's
    `{output: [(product type, collection)]}` map.

    Types compare case-insensitively (the original upper-cases both sides); an entry of type `"*"` takes any type
    not listed explicitly. The output's own entries decide; only an output the map does not name falls back to
    every entry, since the original matched on `product:type` alone. Where several entries match, the first in the
    request's order wins (the original published the product once per match, i.e. twice in one collection or into
    two: one item per product is what a catalog can hold under one id).
    """
    entries = targets.get(output_id) or [pair for pairs in targets.values() for pair in pairs]
    wanted = (product_type or "").upper()
    exact = [coll for t, coll in entries if t.upper() == wanted]
    wildcard = [coll for t, coll in entries if t == "*"]
    if wanted and (exact or wildcard):
        return (exact or wildcard)[0]
    raise ProductTypeUnknownError(product_id, product_type, output_id, [t for t, _ in entries])


def stac_discovery_of(document: dict[str, Any]) -> dict[str, Any] | None:
    """EOPF's STAC from a product's root metadata: Zarr v3 `zarr.json` (under `attributes`) or v2 `.zattrs`."""
    attributes = document.get("attributes") if "zarr_format" in document else document
    found = (attributes or {}).get("stac_discovery")
    return found if isinstance(found, dict) else None


def _positions(coordinates: Any) -> Iterator[list[float]]:
    if coordinates and isinstance(coordinates[0], int | float):
        yield coordinates
    else:
        for part in coordinates:
            yield from _positions(part)


def _bbox(geometry: dict[str, Any]) -> list[float]:
    """The 2D bbox of a GeoJSON geometry (STAC requires one with a geometry; EOPF may leave it out)."""
    geometries = geometry.get("geometries") or [geometry]
    points = [p for g in geometries for p in _positions(g["coordinates"])]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [min(xs), min(ys), max(xs), max(ys)]


def product_item(
    stac_discovery: dict[str, Any], product_path: str, *, collection: str, owner_id: str, provenance: Provenance
) -> dict[str, Any]:
    """The catalog item of a processed product: EOPF's own STAC (every property kept), owned by `owner_id`, with
    one Zarr asset at `product_path`, its processing provenance and `derived_from` links to the catalog items of
    the inputs and ADFs it was made from (so a product can be traced back without the workflow history)."""
    product_id = stac_discovery.get("id")
    properties = dict(stac_discovery.get("properties") or {})
    when = properties.get("datetime") or properties.get("start_datetime")
    if not product_id or not when:
        raise ProductMetadataError(f"product at {product_path} has no id or no datetime/start_datetime in its STAC")
    if provenance.derived_from and not provenance.catalog_url:
        raise ValueError("provenance.catalog_url is needed to link the inputs")
    software = properties.get("processing:software")
    properties |= {
        "owner": owner_id,
        "processing:lineage": f"rs-ondemand DprProcessing {provenance.workflow_id}",
        "processing:software": (software if isinstance(software, dict) else {})
        | {provenance.processor_name: provenance.processor_version},
        "processing:datetime": provenance.processed_at,
    }
    geometry = stac_discovery.get("geometry")
    item = pystac.Item(
        id=product_id,
        geometry=geometry or copy.deepcopy(WHOLE_WORLD),
        bbox=(stac_discovery.get("bbox") or _bbox(geometry)) if geometry else list(WHOLE_WORLD_BBOX),
        datetime=str_to_datetime(when),
        properties=properties,
        collection=collection,
        stac_extensions=list(dict.fromkeys([*stac_discovery.get("stac_extensions", []), PROCESSING_EXTENSION])),
    )
    item.add_asset(
        f"{product_id}.zarr",
        pystac.Asset(
            href=product_path, title=f"{product_id}.zarr", media_type=ZARR_MEDIA_TYPE, roles=["data", "metadata"]
        ),
    )
    base = (provenance.catalog_url or "").rstrip("/")
    for ref in provenance.derived_from:
        href = f"{base}/collections/{ref.collection}/items/{ref.item_id}"
        item.add_link(pystac.Link(pystac.RelType.DERIVED_FROM, href, media_type=pystac.MediaType.GEOJSON))
    return item.to_dict(include_self_link=False, transform_hrefs=False)
