"""OData entity → STAC item mapping of each station, as rs-server does it
(docs/rs-compatibility.md#station-interfaces)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from rs_simulator.catalogue import Catalogue, Downloadable, Product, Session
from rs_simulator.content import Content
from rs_simulator.dates import iso_ms, parse_datetime
from rs_simulator.stations import StationName, constellation_of, platform_of

STAC_VERSION = "1.1.0"
FILE_EXTENSION = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
SAT_EXTENSION = "https://stac-extensions.github.io/sat/v1.0.0/schema.json"
TIMESTAMPS_EXTENSION = "https://stac-extensions.github.io/timestamps/v1.1.0/schema.json"
PRODUCT_EXTENSION = "https://stac-extensions.github.io/product/v0.1.0/schema.json"
MD5_MULTIHASH_PREFIX = "d50110"  # multihash: varint code 0xd5 (md5) = d5 01, then length 0x10


@dataclass(frozen=True)
class ItemCore:
    """The request-independent part of an item (what filters and sorts look at), computed once per entity."""

    id: str
    satellite: str
    geometry: dict[str, Any] | None
    properties: dict[str, Any]

    @property
    def bbox(self) -> list[float] | None:
        if self.geometry is None:
            return None
        points = [p for ring in self.geometry["coordinates"] for p in ring]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        return [min(xs), min(ys), max(xs), max(ys)]


@dataclass(frozen=True)
class StacMapping:
    """How one station's entities become items: shared code, station-specific field choices."""

    station: StationName
    title: str
    extensions: tuple[str, ...]
    records: Callable[[Catalogue], Sequence[Any]]
    core: Callable[[Any], ItemCore]
    assets: Callable[[Any, str], dict[str, Any]]
    """(entity, station OData root URL) → assets; the MD5s of `contents(entity)` must be known."""
    contents: Callable[[Any], list[Content]]


def _dt(value: str) -> str:
    return iso_ms(parse_datetime(value))


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def multihash_md5(entity: Downloadable) -> str:
    """`file:checksum` value: the MD5 as a multihash hex string."""
    return MD5_MULTIHASH_PREFIX + entity.content.md5_hex()


# ------------------------------------------------------------------------------------------------ CADIP

_SESSION_PROPERTIES = {
    "cadip:id": "Id",
    "cadip:num_channels": "NumChannels",
    "cadip:station_unit_id": "StationUnitId",
    "cadip:downlink_orbit": "DownlinkOrbit",
    "cadip:acquisition_id": "AcquisitionId",
    "cadip:antenna_id": "AntennaId",
    "cadip:front_end_id": "FrontEndId",
    "cadip:retransfer": "Retransfer",
    "cadip:antenna_status_ok": "AntennaStatusOK",
    "cadip:front_end_status_ok": "FrontEndStatusOK",
    "cadip:downlink_status_ok": "DownlinkStatusOK",
    "cadip:delivery_push_ok": "DeliveryPushOK",
}


@cache
def session_core(session: Session) -> ItemCore:
    f = session.fields
    properties = {
        "datetime": _dt(f["DownlinkStart"]),
        "start_datetime": _dt(f["DownlinkStart"]),
        "end_datetime": _dt(f["DownlinkStop"]),
        "published": _dt(f["PublicationDate"]),
        "platform": platform_of(session.satellite),
        "constellation": constellation_of(session.satellite),
        "sat:absolute_orbit": f.get("DownlinkOrbit"),
        **{name: f.get(field) for name, field in _SESSION_PROPERTIES.items()},
        "cadip:planned_data_start": _dt(f["PlannedDataStart"]),
        "cadip:planned_data_stop": _dt(f["PlannedDataStop"]),
    }
    return ItemCore(session.session_id, session.satellite, None, _without_none(properties))


def session_assets(session: Session, station_root: str) -> dict[str, Any]:
    assets = {}
    for chunk in sorted(session.files, key=lambda c: (c.fields["Channel"], c.fields["BlockNumber"])):
        f = chunk.fields
        assets[chunk.name] = {
            "href": f"{station_root}/Files({chunk.id})/$value",
            "title": chunk.name,
            "type": "application/octet-stream",
            "roles": ["cadu"],
            "file:size": f["Size"],
            "file:checksum": multihash_md5(chunk),
            "cadip:id": chunk.id,
            "cadip:channel": f["Channel"],
            "cadip:block_number": f["BlockNumber"],
            "cadip:final_block": f["FinalBlock"],
            "cadip:retransfer": f["Retransfer"],
            "cadip:session_id": f["SessionId"],
            "created": _dt(f["PublicationDate"]),
            "eviction_datetime": _dt(f["EvictionDate"]),
        }
    return assets


# ------------------------------------------------------------------------------------------ AUXIP, PRIP


def _attributes(product: Product) -> dict[str, Any]:
    return {a["Name"]: a["Value"] for a in product.fields.get("Attributes", [])}


def _product_properties(product: Product, id_property: str) -> dict[str, Any]:
    f = product.fields
    return {
        "datetime": _dt(f["ContentDate"]["Start"]),
        "start_datetime": _dt(f["ContentDate"]["Start"]),
        "end_datetime": _dt(f["ContentDate"]["End"]),
        "created": _dt(f["PublicationDate"]),
        "published": _dt(f["PublicationDate"]),
        "expires": _dt(f["EvictionDate"]),
        "product:type": _attributes(product).get("productType"),
        "platform": platform_of(product.satellite),
        "constellation": constellation_of(product.satellite),
        id_property: product.id,
    }


@cache
def auxip_core(product: Product) -> ItemCore:
    return ItemCore(product.name, product.satellite, None, _without_none(_product_properties(product, "adgs:id")))


@cache
def prip_core(product: Product) -> ItemCore:
    attributes = _attributes(product)
    direction = attributes.get("orbitDirection")
    properties = _product_properties(product, "prip:id") | {
        "sat:absolute_orbit": attributes.get("orbitNumber"),
        "sat:relative_orbit": attributes.get("relativeOrbitNumber"),
        "sat:orbit_state": direction.lower() if isinstance(direction, str) else None,
        "eopf:origin_datetime": _dt(product.fields["OriginDate"]),
    }
    item_id = product.name.removesuffix(".zip")
    return ItemCore(item_id, product.satellite, product.fields.get("GeoFootprint"), _without_none(properties))


def _product_asset(product: Product, station_root: str, roles: list[str], media_type: str) -> dict[str, Any]:
    return {
        product.name: {
            "href": f"{station_root}/Products({product.id})/$value",
            "title": product.name,
            "type": media_type,
            "roles": roles,
            "file:size": product.fields["ContentLength"],
            "file:checksum": multihash_md5(product),
            "eviction_datetime": _dt(product.fields["EvictionDate"]),
        }
    }


def auxip_assets(product: Product, station_root: str) -> dict[str, Any]:
    return _product_asset(product, station_root, ["data"], product.fields["ContentType"])


def prip_assets(product: Product, station_root: str) -> dict[str, Any]:
    return _product_asset(product, station_root, ["data", "metadata"], "application/zip")


MAPPINGS = {
    StationName.CADIP: StacMapping(
        station=StationName.CADIP,
        title="CADIP sessions",
        extensions=(FILE_EXTENSION, SAT_EXTENSION, TIMESTAMPS_EXTENSION),
        records=lambda catalogue: catalogue.sessions,
        core=session_core,
        assets=session_assets,
        contents=lambda session: [f.content for f in session.files],
    ),
    StationName.AUXIP: StacMapping(
        station=StationName.AUXIP,
        title="AUXIP auxiliary files",
        extensions=(FILE_EXTENSION, TIMESTAMPS_EXTENSION, PRODUCT_EXTENSION),
        records=lambda catalogue: catalogue.products[StationName.AUXIP],
        core=auxip_core,
        assets=auxip_assets,
        contents=lambda product: [product.content],
    ),
    StationName.PRIP: StacMapping(
        station=StationName.PRIP,
        title="PRIP products",
        extensions=(FILE_EXTENSION, SAT_EXTENSION, TIMESTAMPS_EXTENSION, PRODUCT_EXTENSION),
        records=lambda catalogue: catalogue.products[StationName.PRIP],
        core=prip_core,
        assets=prip_assets,
        contents=lambda product: [product.content],
    ),
}


def full_item(
    mapping: StacMapping, record: Any, collection_id: str, stac_root: str, station_root: str
) -> dict[str, Any]:
    """The STAC item of `record` as seen in `collection_id` (links and hrefs are absolute)."""
    core = mapping.core(record)
    collection_url = f"{stac_root}/collections/{collection_id}"
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": list(mapping.extensions),
        "id": core.id,
        "collection": collection_id,
        "geometry": core.geometry,
    }
    if core.bbox is not None:
        item["bbox"] = core.bbox
    item["properties"] = dict(core.properties)
    item["links"] = [
        {"rel": "self", "href": f"{collection_url}/items/{core.id}", "type": "application/geo+json"},
        {"rel": "collection", "href": collection_url, "type": "application/json"},
        {"rel": "parent", "href": collection_url, "type": "application/json"},
        {"rel": "root", "href": stac_root, "type": "application/json"},
    ]
    item["assets"] = mapping.assets(record, station_root)
    return item
