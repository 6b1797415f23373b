"""The seeded catalogue: deterministic from the seed, and covering what the workflows will ask for."""

from datetime import datetime, timedelta

from rs_simulator.dates import parse_datetime, utc
from rs_simulator.settings import SimulatorSettings
from rs_simulator.state import seeded_catalogue
from rs_simulator.stations import StationName


def snapshot(seed: int) -> list[object]:
    catalogue = seeded_catalogue(SimulatorSettings(seed=seed))
    return [
        [s.fields for s in catalogue.sessions],
        [f.fields for f in catalogue.files],
        [p.fields for p in catalogue.products[StationName.AUXIP]],
        [p.fields for p in catalogue.products[StationName.PRIP]],
        catalogue.files[3].content.read(0, 4096),
        catalogue.products[StationName.AUXIP][10].content.read(0, 4096),
    ]


def test_same_seed_same_catalogue_other_seed_other_catalogue() -> None:
    assert snapshot(42) == snapshot(42)
    first, other = snapshot(42), snapshot(7)
    # The real session keeps its ids whatever the seed; generated entities and bytes change.
    assert first[0][0] != other[0][0] or first[0][1] != other[0][1]
    assert first[3] != other[3] and first[4] != other[4]


def test_auxip_orbit_types_cover_2024_and_2025_for_s1a_and_s1c() -> None:
    catalogue = seeded_catalogue(SimulatorSettings())
    products = catalogue.products[StationName.AUXIP]
    for satellite in ("S1A", "S1C"):
        for product_type in ("AUX_PREORB", "AUX_RESORB", "AUX_POEORB", "MPL_ORBPRE", "MPL_ORBSCT", "AX___OSF_AX"):
            windows = [
                (parse_datetime(p.fields["ContentDate"]["Start"]), parse_datetime(p.fields["ContentDate"]["End"]))
                for p in products
                if p.satellite == satellite and f"_{product_type}_" in p.name
            ]
            day = utc(2024, 1, 1)
            while day < utc(2026, 1, 1):  # every 6 hours of the two years lies inside some window
                assert any(start <= day <= end for start, end in windows), (satellite, product_type, day)
                day += timedelta(hours=6)


def test_prip_has_about_thirty_products_of_several_types() -> None:
    products = seeded_catalogue(SimulatorSettings()).products[StationName.PRIP]
    assert 25 <= len(products) <= 40
    types = {a["Value"] for p in products for a in p.fields["Attributes"] if a["Name"] == "productType"}
    assert types == {"IW_RAW__0S", "S01SIWSLC", "S2MSI1C"}
    raw = [p.name for p in products if "_IW_RAW__0S" in p.name]
    assert all(
        name.startswith(("S1A_IW_RAW__0SDV_", "S1C_IW_RAW__0SDV_")) and name.endswith(".SAFE.zip") for name in raw
    )
    assert all(isinstance(datetime.fromisoformat(p.fields["PublicationDate"]), datetime) for p in products)


def test_chunk_sizes_follow_the_setting() -> None:
    catalogue = seeded_catalogue(SimulatorSettings(chunk_size=4096))
    real = next(s for s in catalogue.sessions if s.session_id == "S1A_20241114143038056552")
    assert max(f.content.size for f in real.files) == 4096
    assert {f.fields["Size"] for f in real.files} == {
        4096,
        round(80094140 * 4096 / 314571600),
        round(105351848 * 4096 / 314571600),
    }
