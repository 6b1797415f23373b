"""Seeded AUXIP orbit/auxiliary files and PRIP products, and the factory behind `/_catalogue/products`."""

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rs_simulator import earth_explorer
from rs_simulator.catalogue import Product
from rs_simulator.content import Content, NoiseContent, TextContent, stable_key
from rs_simulator.dates import compact, iso_ms, parse_datetime, utc
from rs_simulator.seeding import absolute_orbit, rng_for, uuid_from
from rs_simulator.stations import StationName, short_name_of

# AUXIP coverage: short validity windows tile this period; "long" files cover LONG_START..LONG_STOP, so that
# a task table query over years (the RS S1 L0 sample asks 2023-10-03..2025-10-03) also finds a file.
COVERAGE_START = utc(2024, 1, 1)
COVERAGE_STOP = utc(2026, 1, 1)
LONG_START = utc(2023, 1, 1)
LONG_STOP = utc(2027, 1, 1)
WINDOW = timedelta(days=15)
WINDOW_MARGIN = timedelta(hours=12)  # neighbouring windows overlap by 2 x margin
AUX_SATELLITES = ("S1A", "S1C")


@dataclass(frozen=True)
class AuxSeries:
    """One AUXIP product type: how many versions per short window and how many long-validity files."""

    product_type: str
    versions_per_window: int
    long_versions: int


AUX_SERIES = (
    AuxSeries("AUX_PREORB", 1, 0),
    AuxSeries("AUX_RESORB", 2, 0),
    AuxSeries("AUX_POEORB", 1, 0),
    AuxSeries("MPL_ORBPRE", 2, 1),
    AuxSeries("AX___FRO_AX", 1, 1),
    AuxSeries("MPL_ORBSCT", 0, 3),
    AuxSeries("AX___OSF_AX", 0, 2),
    AuxSeries("AUX_PP2", 0, 2),
)


@dataclass(frozen=True)
class PripSeries:
    """PRIP products of one type: datatakes of consecutive slices."""

    satellite: str
    product_type: str
    datatakes: int
    slices: int
    slice_seconds: int


PRIP_SERIES = (
    PripSeries("S1A", "IW_RAW__0S", 4, 3, 25),
    PripSeries("S1C", "IW_RAW__0S", 2, 3, 25),
    PripSeries("S1A", "S01SIWSLC", 3, 2, 25),
    PripSeries("S2B", "S2MSI1C", 4, 2, 6),
)

_S1_SAFE_TYPE = re.compile(r"^[A-Z0-9]{2}_[A-Z0-9_]{4}_\d[A-Z]$")  # IW_RAW__0S, IW_SLC__1S
_EOPF_TYPE = re.compile(r"^S\d{2}[A-Z0-9_]+$")  # S01SIWSLC, S03OLCL0_


@dataclass(frozen=True)
class ProductPlan:
    """What a product is; ids, names' CRCs, footprints and orbit numbers are drawn from a seeded rng."""

    station: StationName
    satellite: str
    product_type: str
    start: datetime
    stop: datetime
    created: datetime
    size: int | None = None
    """Bytes of noise content; None gives the type's natural content (an EOF document or `product_size`)."""
    version: int = 1


def is_orbit_type(product_type: str) -> bool:
    """Orbit-like ADF types are served as Earth Explorer `.EOF` documents."""
    return any(tag in product_type for tag in ("ORB", "OSF", "FRO"))


def product_name(plan: ProductPlan, rng: random.Random) -> str:
    """A file name in the style of the real stations for the plan's station and product type."""
    sat, ptype, start, stop = plan.satellite, plan.product_type, plan.start, plan.stop
    crc = f"{rng.getrandbits(16):04X}"
    if plan.station is StationName.AUXIP:
        if is_orbit_type(ptype):
            return f"{sat}_OPER_{ptype}_OPOD_{compact(plan.created)}_V{compact(start)}_{compact(stop)}.EOF"
        return f"{sat}_{ptype}_V{compact(start)}_G{compact(plan.created)}.SAFE.zip"
    orbit = absolute_orbit(sat, start)
    if _S1_SAFE_TYPE.match(ptype) and sat.startswith("S1"):
        datatake = rng.getrandbits(20)
        return f"{sat}_{ptype}DV_{compact(start)}_{compact(stop)}_{orbit:06d}_{datatake:06X}_{crc}.SAFE.zip"
    if ptype.startswith("S2MSI"):
        tile = f"{rng.randint(10, 60)}{rng.choice('CDEFGHJKLMNPQRSTUVWX')}{rng.choice('ABCDEFGH')}Q"
        level = ptype.removeprefix("S2MSI")
        return f"{sat}_MSIL{level}_{compact(start)}_N0511_R{orbit % 143:03d}_T{tile}_{compact(plan.created)}.SAFE.zip"
    if _EOPF_TYPE.match(ptype):
        duration = int((stop - start).total_seconds())
        return f"{ptype}_{compact(start)}_{duration:04d}_{sat[2]}{orbit % 175:03d}_{crc}.zarr.zip"
    return f"{sat}_{ptype}_{compact(start)}_{compact(stop)}_{crc}.zip"


def content_type(name: str) -> str:
    if name.endswith(".EOF"):
        return "application/xml"
    if name.endswith(".zip"):
        return "application/zip"
    return "application/octet-stream"


def attribute(name: str, value: str | int | float | bool | datetime) -> dict[str, Any]:
    """An OData CSC attribute, typed after the Python value (bool before int: bool is an int)."""
    if isinstance(value, bool):
        kind = "Boolean"
    elif isinstance(value, int):
        kind = "Integer"
    elif isinstance(value, float):
        kind = "Double"
    elif isinstance(value, datetime):
        kind, value = "DateTimeOffset", iso_ms(value)
    else:
        kind = "String"
    return {"@odata.type": f"#OData.CSC.{kind}Attribute", "Name": name, "ValueType": kind, "Value": value}


def footprint(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """A small lon/lat rectangle as the PRIP `Footprint` (OData geography literal) and `GeoFootprint`."""
    lon, lat = round(rng.uniform(-170, 165), 4), round(rng.uniform(-70, 65), 4)
    ring = [[lon, lat], [lon + 2.5, lat], [lon + 2.5, lat + 2.0], [lon, lat + 2.0], [lon, lat]]
    wkt = ", ".join(f"{x} {y}" for x, y in ring)
    return f"geography'SRID=4326;POLYGON(({wkt}))'", {"type": "Polygon", "coordinates": [ring]}


def make_product(seed: int, plan: ProductPlan, rng: random.Random, product_size: int) -> Product:
    """A product entity with its OData fields, CSC attributes and deterministic content."""
    name = product_name(plan, rng)
    published = plan.created + timedelta(minutes=rng.randint(20, 180))
    content: Content
    if plan.size is None and plan.station is StationName.AUXIP and name.endswith(".EOF"):
        orbit = earth_explorer.OrbitFile(
            file_name=name.removesuffix(".EOF"),
            file_type=plan.product_type,
            satellite=plan.satellite,
            validity_start=plan.start,
            validity_stop=plan.stop,
            created=plan.created,
            system="OPOD",
            version=plan.version,
            phase_key=stable_key(seed, "orbit", name),
        )
        content = TextContent(lambda: earth_explorer.render(orbit))
    else:
        content = NoiseContent(plan.size or product_size, stable_key(seed, "product", name), seed)
    attributes = [
        attribute("productType", plan.product_type),
        attribute("platformShortName", short_name_of(plan.satellite)),
        attribute("platformSerialIdentifier", plan.satellite[2:3].strip("_")),
        attribute("processingCenter", "OPOD" if plan.station is StationName.AUXIP else "ESRIN"),
        attribute("processingDate", plan.created),
        attribute("beginningDateTime", plan.start),
        attribute("endingDateTime", plan.stop),
        attribute("processorVersion", f"{plan.version:02d}.{rng.randint(0, 9)}"),
    ]
    fields: dict[str, Any] = {
        "Id": uuid_from(rng),
        "Name": name,
        "ContentType": content_type(name),
        "ContentLength": content.size,
        "OriginDate": iso_ms(plan.created),
        "PublicationDate": iso_ms(published),
        "EvictionDate": iso_ms(published + timedelta(days=365 if plan.station is StationName.AUXIP else 30)),
        "ContentDate": {"Start": iso_ms(plan.start), "End": iso_ms(plan.stop)},
    }
    if plan.station is StationName.PRIP:
        wkt, geojson = footprint(rng)
        orbit_number = absolute_orbit(plan.satellite, plan.start)
        fields |= {"ModificationDate": fields["PublicationDate"], "Online": True}
        fields |= {"Footprint": wkt, "GeoFootprint": geojson}
        attributes += [
            attribute("orbitNumber", orbit_number),
            attribute("relativeOrbitNumber", orbit_number % 175 + 1),
            attribute("orbitDirection", rng.choice(("ASCENDING", "DESCENDING"))),
            attribute("productClass", "S"),
        ]
    fields["Attributes"] = attributes
    return Product(fields=fields, content=content, satellite=plan.satellite)


def _aux_plans() -> list[tuple[ProductPlan, str]]:
    plans = []
    windows = int((COVERAGE_STOP - COVERAGE_START) / WINDOW) + 1
    for sat in AUX_SATELLITES:
        for series in AUX_SERIES:
            for w in range(windows if series.versions_per_window else 0):
                start = COVERAGE_START + w * WINDOW - WINDOW_MARGIN
                stop = COVERAGE_START + (w + 1) * WINDOW + WINDOW_MARGIN
                for v in range(1, series.versions_per_window + 1):
                    # Later versions are re-generated after the window closed: "latest created" picks them.
                    created = stop + timedelta(hours=18 * v, minutes=7 * w % 60)
                    plan = ProductPlan(StationName.AUXIP, sat, series.product_type, start, stop, created, None, v)
                    plans.append((plan, f"{sat}:{series.product_type}:{w}:{v}"))
            for v in range(1, series.long_versions + 1):
                # Long files are older than any short one, so a short window wins when both cover a time.
                created = LONG_START - timedelta(days=30) + timedelta(days=200 * (v - 1))
                plan = ProductPlan(StationName.AUXIP, sat, series.product_type, LONG_START, LONG_STOP, created, None, v)
                plans.append((plan, f"{sat}:{series.product_type}:long:{v}"))
    return plans


def _prip_plans(seed: int) -> list[tuple[ProductPlan, str]]:
    plans = []
    span = (COVERAGE_STOP - COVERAGE_START).total_seconds()
    for series in PRIP_SERIES:
        rng = rng_for(seed, "prip-plan", series.satellite, series.product_type)
        for d in range(series.datatakes):
            take_start = COVERAGE_START + timedelta(seconds=int(span * (d + rng.random()) / series.datatakes))
            for s in range(series.slices):
                start = take_start + timedelta(seconds=series.slice_seconds * s)
                stop = start + timedelta(seconds=series.slice_seconds)
                created = stop + timedelta(minutes=rng.randint(30, 240))
                plan = ProductPlan(StationName.PRIP, series.satellite, series.product_type, start, stop, created)
                plans.append((plan, f"{series.satellite}:{series.product_type}:{d}:{s}"))
    return plans


def seeded_products(seed: int, station: StationName, product_size: int) -> list[Product]:
    """The AUXIP or PRIP catalogue at start-up, in PublicationDate order."""
    plans = _aux_plans() if station is StationName.AUXIP else _prip_plans(seed)
    products = [make_product(seed, plan, rng_for(seed, station, label), product_size) for plan, label in plans]
    return sorted(products, key=lambda p: (parse_datetime(p.fields["PublicationDate"]), p.name))


def requested_products(
    seed: int,
    station: StationName,
    product_type: str,
    count: int,
    start: datetime,
    step_seconds: float,
    validity_seconds: float,
    satellite: str,
    size: int | None,
    product_size: int,
) -> list[Product]:
    """Products asked for through `/_catalogue/products`: `count` validity windows `step_seconds` apart.

    Each product derives from the parameters and its index, so asking twice gives the same products.
    """
    products = []
    for index in range(count):
        product_start = start + timedelta(seconds=step_seconds * index)
        stop = product_start + timedelta(seconds=validity_seconds)
        plan = ProductPlan(station, satellite, product_type, product_start, stop, stop + timedelta(hours=1), size)
        label = ("requested", station, product_type, satellite, start.isoformat(), step_seconds, validity_seconds)
        products.append(make_product(seed, plan, rng_for(seed, *label, size, index), product_size))
    return products
