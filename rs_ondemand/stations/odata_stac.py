"""OData entities of the ESA station interfaces → the STAC items staging works on (pure functions).

A CADIP session is one item whose assets are its chunk files; an AUXIP or PRIP product is one item with one
asset. The shape is the one an RS-Server STAC facade gives for the same entities (rs-server's OData → STAC
mapping: ids, datetimes, `platform`, `cadip:*` and product properties, one asset per file), so an item staged
through either API lands in the catalog the same, except for the provenance of `file:checksum`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from rs_ondemand.checksums import md5_multihash

STAC_VERSION = "1.1.0"
EXTENSIONS = {
    "file:": "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "sat:": "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
    "timestamps": "https://stac-extensions.github.io/timestamps/v1.1.0/schema.json",
    "product:": "https://stac-extensions.github.io/product/v0.1.0/schema.json",
}
TIMESTAMP_FIELDS = ("published", "expires", "unpublished")

SESSION_PROPERTIES = {
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
FILE_PROPERTIES = {
    "cadip:id": "Id",
    "cadip:channel": "Channel",
    "cadip:block_number": "BlockNumber",
    "cadip:final_block": "FinalBlock",
    "cadip:retransfer": "Retransfer",
    "cadip:session_id": "SessionId",
}


class ODataEntityError(ValueError):
    """An entity lacks a field the interface makes mandatory, or has it in an unusable form."""


def iso_ms(value: Any) -> str:
    """An OData `DateTimeOffset` as `2024-11-14T14:31:11.032Z` (UTC, milliseconds), whatever its precision."""
    if not isinstance(value, str):
        raise ODataEntityError(f"not a date-time: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ODataEntityError(f"not an ISO 8601 date-time: {value!r}") from None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def size_of(value: Any) -> int | None:
    """`Size` / `ContentLength`: a number or a numeric string (stations send both)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def md5_of(entity: dict[str, Any]) -> str | None:
    """The MD5 of an entity's `Checksum` array (`[{Algorithm, Value, ChecksumDate}]`), if it gives one."""
    checksums = entity.get("Checksum", entity.get("Checksums"))
    if isinstance(checksums, dict):
        checksums = [checksums]
    for checksum in checksums if isinstance(checksums, list) else []:
        value = checksum.get("Value") if isinstance(checksum, dict) else None
        is_md5 = isinstance(checksum, dict) and str(checksum.get("Algorithm", "")).upper() == "MD5"
        if is_md5 and isinstance(value, str) and re.fullmatch(r"[0-9A-Fa-f]{32}", value):
            return value.lower()
    return None


def platform_of(satellite: str) -> tuple[str | None, str | None]:
    """(`platform`, `constellation`) of a satellite code: `S1A` → (`sentinel-1a`, `sentinel-1`); a mission-wide
    code (`S1_`) has no platform."""
    match = re.fullmatch(r"S(\d)([A-Za-z_]?)", satellite)
    if match is None:
        return None, None
    constellation = f"sentinel-{match[1]}"
    unit = match[2].lower()
    return (f"{constellation}{unit}" if unit.isalpha() else None), constellation


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _required(entity: dict[str, Any], name: str) -> Any:
    if entity.get(name) is None:
        raise ODataEntityError(f"{entity.get('Name') or entity.get('Id') or 'entity'} has no {name}")
    return entity[name]


def _extensions(properties: dict[str, Any], assets: dict[str, Any]) -> list[str]:
    """The extensions whose fields the item uses, in a fixed order."""
    names = set(properties) | {k for asset in assets.values() for k in asset}
    used = {prefix for prefix in EXTENSIONS if any(n.startswith(prefix) for n in names)}
    if any(field in names for field in TIMESTAMP_FIELDS):
        used.add("timestamps")
    return [url for prefix, url in EXTENSIONS.items() if prefix in used]


def _item(item_id: str, geometry: Any, properties: dict[str, Any], assets: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": _extensions(properties, assets),
        "id": item_id,
        "geometry": geometry,
    }
    if geometry is not None:
        item["bbox"] = _bbox(geometry)
    return item | {"properties": properties, "links": [], "assets": assets}


def _bbox(geometry: dict[str, Any]) -> list[float]:
    points: list[list[float]] = []

    def walk(coordinates: Any) -> None:
        if coordinates and isinstance(coordinates[0], int | float):
            points.append(coordinates)
        else:
            for part in coordinates:
                walk(part)

    walk(geometry.get("coordinates", []))
    if not points:
        raise ODataEntityError("a footprint without coordinates")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [min(xs), min(ys), max(xs), max(ys)]


# ------------------------------------------------------------------------------------------------ CADIP


def session_item(session: dict[str, Any], files: list[dict[str, Any]], download_root: str) -> dict[str, Any]:
    """The item of a CADIP session (`Sessions` entity) with one `cadu` asset per chunk file (`Files`).

    `download_root` is the station's OData root; a file's asset points at `<root>/Files(<Id>)/$value`.
    """
    platform, constellation = platform_of(str(_required(session, "Satellite")))
    properties = _without_none(
        {
            "datetime": iso_ms(_required(session, "DownlinkStart")),
            "start_datetime": iso_ms(session["DownlinkStart"]),
            "end_datetime": iso_ms(_required(session, "DownlinkStop")),
            "published": iso_ms(_required(session, "PublicationDate")),
            "platform": platform,
            "constellation": constellation,
            "sat:absolute_orbit": session.get("DownlinkOrbit"),
            **{name: session.get(field) for name, field in SESSION_PROPERTIES.items()},
            "cadip:planned_data_start": _optional_time(session, "PlannedDataStart"),
            "cadip:planned_data_stop": _optional_time(session, "PlannedDataStop"),
        }
    )
    root = download_root.rstrip("/")
    assets = {}
    for chunk in sorted(files, key=lambda f: (_int(f, "Channel"), _int(f, "BlockNumber"))):
        name = str(_required(chunk, "Name"))
        asset = {
            "href": f"{root}/Files({_required(chunk, 'Id')})/$value",
            "title": name,
            "type": "application/octet-stream",
            "roles": ["cadu"],
            "file:size": size_of(chunk.get("Size")),
            "file:checksum": _multihash(chunk),
            **{key: chunk.get(field) for key, field in FILE_PROPERTIES.items()},
            "cadip:session_id": chunk.get("SessionId", chunk.get("SessionID")),
            "created": _optional_time(chunk, "PublicationDate"),
            "eviction_datetime": _optional_time(chunk, "EvictionDate"),
        }
        assets[name] = _without_none(asset)
    return _item(str(_required(session, "SessionId")), None, properties, assets)


def _int(entity: dict[str, Any], name: str) -> int:
    value = size_of(entity.get(name))
    if value is None:
        raise ODataEntityError(f"{entity.get('Name') or entity.get('Id')} has no integer {name}")
    return value


def _optional_time(entity: dict[str, Any], name: str) -> str | None:
    return iso_ms(entity[name]) if entity.get(name) is not None else None


def _multihash(entity: dict[str, Any]) -> str | None:
    md5 = md5_of(entity)
    return md5_multihash(md5) if md5 else None


def session_gaps(item: dict[str, Any]) -> list[str]:
    """Why a session item is incomplete (empty: complete): every channel of `cadip:num_channels` must have
    its final block (`cadip:final_block`) and every block up to it."""
    blocks: dict[int, set[int]] = {}
    finals: dict[int, int] = {}
    for asset in item.get("assets", {}).values():
        channel, block = asset.get("cadip:channel"), asset.get("cadip:block_number")
        if not isinstance(channel, int) or not isinstance(block, int):
            continue
        blocks.setdefault(channel, set()).add(block)
        if asset.get("cadip:final_block") is True:
            finals[channel] = block
    declared = item.get("properties", {}).get("cadip:num_channels")
    channels = range(1, declared + 1) if isinstance(declared, int) and declared > 0 else sorted(blocks)
    gaps = []
    for channel in channels:
        if channel not in finals:
            gaps.append(f"channel {channel} has no final block yet ({len(blocks.get(channel, ()))} blocks)")
        elif missing := sorted(set(range(1, finals[channel] + 1)) - blocks[channel]):
            gaps.append(f"channel {channel} lacks blocks {_ranges(missing)}")
    return gaps


def _ranges(numbers: list[int]) -> str:
    parts, start = [], numbers[0]
    for previous, current in zip(numbers, [*numbers[1:], None], strict=True):
        if current != previous + 1:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
            start = current if current is not None else start
    return ", ".join(parts)


# ------------------------------------------------------------------------------------------ AUXIP, PRIP


def attributes_of(product: dict[str, Any]) -> dict[str, Any]:
    """`Attributes` (`[{Name, ValueType, Value}]`, expanded with `$expand=Attributes`) as a mapping."""
    attributes = product.get("Attributes")
    if not isinstance(attributes, list):
        return {}
    return {a["Name"]: a.get("Value") for a in attributes if isinstance(a, dict) and isinstance(a.get("Name"), str)}


def satellite_of(attributes: dict[str, Any]) -> str | None:
    """`S1A` from the `platformShortName` (`SENTINEL-1`) and `platformSerialIdentifier` (`A`) attributes."""
    short, serial = (
        str(attributes.get("platformShortName") or ""),
        str(attributes.get("platformSerialIdentifier") or ""),
    )
    match = re.fullmatch(r"SENTINEL-?(\d)", short.strip().upper())
    return f"S{match[1]}{serial.strip().upper()[:1] or '_'}" if match else None


def product_item(kind: str, product: dict[str, Any], download_root: str) -> dict[str, Any]:
    """The item of an AUXIP or PRIP product (`Products` entity, with its `Attributes` expanded)."""
    attributes = attributes_of(product)
    platform, constellation = platform_of(satellite_of(attributes) or "")
    content_date = _required(product, "ContentDate")
    name = str(_required(product, "Name"))
    start = iso_ms(content_date.get("Start") if isinstance(content_date, dict) else None)
    properties: dict[str, Any] = {
        "datetime": start,
        "start_datetime": start,
        "end_datetime": iso_ms(content_date.get("End")),
        "created": iso_ms(_required(product, "PublicationDate")),
        "published": iso_ms(product["PublicationDate"]),
        "expires": _optional_time(product, "EvictionDate"),
        "product:type": attributes.get("productType"),
        "platform": platform,
        "constellation": constellation,
        f"{'prip' if kind == 'prip' else 'adgs'}:id": str(_required(product, "Id")),
    }
    geometry = None
    if kind == "prip":
        direction = attributes.get("orbitDirection")
        properties |= {
            "sat:absolute_orbit": attributes.get("orbitNumber"),
            "sat:relative_orbit": attributes.get("relativeOrbitNumber"),
            "sat:orbit_state": direction.lower() if isinstance(direction, str) else None,
            "eopf:origin_datetime": _optional_time(product, "OriginDate"),
        }
        footprint = product.get("GeoFootprint")
        geometry = footprint if isinstance(footprint, dict) and footprint.get("coordinates") else None
    media_type = "application/zip" if kind == "prip" else str(product.get("ContentType") or "application/octet-stream")
    asset = {
        "href": f"{download_root.rstrip('/')}/Products({product['Id']})/$value",
        "title": name,
        "type": media_type,
        "roles": ["data", "metadata"] if kind == "prip" else ["data"],
        "file:size": size_of(product.get("ContentLength")),
        "file:checksum": _multihash(product),
        "eviction_datetime": _optional_time(product, "EvictionDate"),
    }
    item_id = name.removesuffix(".zip") if kind == "prip" else name
    return _item(item_id, geometry, _without_none(properties), {name: _without_none(asset)})
