"""Station kinds and the satellite-code conventions they share (platform, constellation, collections)."""

from enum import StrEnum, unique


@unique
class StationName(StrEnum):
    """The three simulated stations; the value is the URL prefix (`/cadip`, `/auxip`, `/prip`)."""

    CADIP = "cadip"
    AUXIP = "auxip"
    PRIP = "prip"


CONSTELLATIONS = ("sentinel-1", "sentinel-2", "sentinel-3")


def platform_of(satellite: str) -> str | None:
    """STAC `platform` of a satellite code: `S1A` → `sentinel-1a`; None for a mission-wide code like `S1_`."""
    constellation = constellation_of(satellite)
    unit = satellite[2:3].lower()
    if constellation is None or not unit.isalpha():
        return None
    return f"{constellation}{unit}"


def constellation_of(satellite: str) -> str | None:
    """STAC `constellation` of a satellite code: `S1A` → `sentinel-1`."""
    if len(satellite) >= 2 and satellite[0] == "S" and satellite[1].isdigit():
        return f"sentinel-{satellite[1]}"
    return None


def short_name_of(satellite: str) -> str:
    """ESA `platformShortName` attribute value: `S1A` → `SENTINEL-1`."""
    return f"SENTINEL-{satellite[1]}"


def collection_ids(station: StationName) -> list[str]:
    """Collections of a station's STAC facade: all items, then one per constellation (`cadip_sentinel1`…)."""
    return [str(station)] + [f"{station}_{c.replace('-', '')}" for c in CONSTELLATIONS]


def in_collection(station: StationName, collection_id: str, satellite: str) -> bool:
    """Whether an entity of `satellite` belongs to `collection_id` of `station`."""
    if collection_id == station:
        return True
    constellation = constellation_of(satellite)
    return constellation is not None and collection_id == f"{station}_{constellation.replace('-', '')}"
