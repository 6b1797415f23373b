"""The STAC facades, driven by pystac-client unchanged, as the staging workflows use them."""

import hashlib
from datetime import datetime, timedelta
from typing import Any

import httpx
import pystac
import pytest
from pystac_client import Client

from tests.support.simulator_server import STATIONS, RunningSimulator

REAL_SESSION_ID = "S1A_20241114143038056552"
FILE_EXTENSION = "https://stac-extensions.github.io/file/v2.1.0/schema.json"


def open_client(simulator: RunningSimulator, station: str) -> Client:
    return Client.open(f"{simulator.url}/{station}/stac")


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def valcover(product_type: str, start: str, end: str, op: str = "t_contains") -> dict[str, Any]:
    """The filter of RS `create_valcover_filter` (docs/rs-compatibility.md#valcover-filter)."""
    return {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "product:type"}, product_type]},
            {
                "op": op,
                "args": [
                    {"interval": [{"property": "start_datetime"}, {"property": "end_datetime"}]},
                    {"interval": [start, end]},
                ],
            },
        ],
    }


@pytest.mark.parametrize("station", STATIONS)
def test_landing_conformance_and_collections(simulator: RunningSimulator, station: str) -> None:
    client = open_client(simulator, station)
    for conformance in ("CORE", "ITEM_SEARCH", "FILTER", "SORT", "COLLECTIONS", "FEATURES"):
        assert client.conforms_to(conformance), conformance
    ids = [c.id for c in client.get_collections()]
    assert ids == [station, f"{station}_sentinel1", f"{station}_sentinel2", f"{station}_sentinel3"]
    collection = client.get_collection(f"{station}_sentinel1")
    assert collection.extent.temporal.intervals[0][0] is not None


def test_cadip_search_by_ids_and_collections(simulator: RunningSimulator) -> None:
    """What the CADIP staging flow does: `GET /search?ids=<session>&collections=<collection>`."""
    client = open_client(simulator, "cadip")
    (item,) = client.search(ids=[REAL_SESSION_ID], collections=["cadip_sentinel1"], method="GET").items()
    assert item.id == REAL_SESSION_ID
    assert item.collection_id == "cadip_sentinel1"
    assert item.geometry is None
    assert item.datetime == when("2024-11-14T14:30:44.018Z")
    props = item.properties
    assert props["start_datetime"] == "2024-11-14T14:30:44.018Z"
    assert props["end_datetime"] == "2024-11-14T14:32:52.465Z"
    assert props["published"] == "2024-11-14T14:31:11.032Z"
    assert (props["platform"], props["constellation"]) == ("sentinel-1a", "sentinel-1")
    assert props["sat:absolute_orbit"] == 56552
    assert props["cadip:id"] == "6894eb36-416e-469e-8788-9a0a2b8f3a8d"
    assert props["cadip:num_channels"] == 2
    assert FILE_EXTENSION in item.stac_extensions
    assert len(item.assets) == 38
    asset = item.assets["DCS_04_S1A_20241114143038056552_ch1_DSDB_00001.raw"]
    assert asset.href == f"{simulator.url}/cadip/Files(bba71884-5c9c-4d4b-8986-1a428b87b441)/$value"
    assert asset.roles == ["cadu"]
    extra = asset.extra_fields
    assert extra["file:size"] == 256 * 1024
    assert extra["file:checksum"].startswith("d50110") and len(extra["file:checksum"]) == 38
    assert (extra["cadip:channel"], extra["cadip:block_number"], extra["cadip:final_block"]) == (1, 1, False)
    assert extra["cadip:session_id"] == REAL_SESSION_ID
    assert extra["created"] == "2024-11-14T14:31:26.646Z"
    assert extra["eviction_datetime"] == "2024-11-21T14:30:00.000Z"
    assert item.get_self_href() == f"{simulator.url}/cadip/stac/collections/cadip_sentinel1/items/{REAL_SESSION_ID}"
    assert pystac.Item.from_dict(item.to_dict()).to_dict() == item.to_dict()


def test_asset_href_downloads_with_token_and_matches_checksum(simulator: RunningSimulator) -> None:
    (item,) = open_client(simulator, "prip").search(collections=["prip"], max_items=1).items()
    (asset,) = item.assets.values()
    assert asset.media_type == "application/zip" and asset.roles == ["data", "metadata"]
    assert item.id == next(iter(item.assets)).removesuffix(".zip")
    data = httpx.get(asset.href, headers=simulator.auth("prip")).content
    assert len(data) == asset.extra_fields["file:size"]
    assert "d50110" + hashlib.md5(data).hexdigest() == asset.extra_fields["file:checksum"]


def test_constellation_collections_hold_their_satellites(simulator: RunningSimulator) -> None:
    client = open_client(simulator, "cadip")
    every = {i.id for i in client.search(collections=["cadip"]).items()}
    parts = {n: {i.id for i in client.search(collections=[f"cadip_sentinel{n}"]).items()} for n in (1, 2, 3)}
    assert parts[1] and parts[2] and parts[3]
    assert parts[1] | parts[2] | parts[3] == every
    assert all(i.startswith("S2") for i in parts[2])


def test_latest_valcover_adf_query(simulator: RunningSimulator) -> None:
    """The task tables' LatestValCover query, time arithmetic included, picks the newest covering file."""
    client = open_client(simulator, "auxip")
    query = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "product:type"}, "AUX_RESORB"]},
            {"op": "=", "args": [{"property": "platform"}, "sentinel-1a"]},
            {
                "op": "t_contains",
                "args": [
                    {"interval": [{"property": "start_datetime"}, {"property": "end_datetime"}]},
                    {
                        "interval": [
                            {"op": "-", "args": ["2024-11-14T14:30:44.018Z", 7200]},
                            {"op": "+", "args": ["2024-11-14T14:32:52.465Z", 0]},
                        ]
                    },
                ],
            },
        ],
    }
    sortby = [{"field": "created", "direction": "desc"}]
    (latest,) = client.search(collections=["auxip"], filter=query, sortby=sortby, max_items=1).items()
    candidates = list(client.search(collections=["auxip"], filter=query).items())
    assert len(candidates) == 2  # two versions of the covering window
    assert latest.properties["created"] == max(c.properties["created"] for c in candidates)
    for candidate in candidates:
        assert candidate.properties["product:type"] == "AUX_RESORB"
        assert when(candidate.properties["start_datetime"]) <= when("2024-11-14T12:30:44.018Z")
        assert when(candidate.properties["end_datetime"]) >= when("2024-11-14T14:32:52.465Z")
    assert latest.id.startswith("S1A_OPER_AUX_RESORB_OPOD_") and latest.id.endswith(".EOF")
    assert latest.properties["adgs:id"]


def test_long_window_adf_for_the_reference_request(simulator: RunningSimulator) -> None:
    """The RS S1 L0 sample request asks for MPL_ORBSCT covering 2023-10-03..2025-10-03."""
    client = open_client(simulator, "auxip")
    query = valcover("MPL_ORBSCT", "2023-10-03T11:00:00.000Z", "2025-10-03T11:00:00.000Z")
    found = list(client.search(collections=["auxip_sentinel1"], filter=query, sortby="-created").items())
    assert {i.properties["platform"] for i in found} == {"sentinel-1a", "sentinel-1c"}
    created = [i.properties["created"] for i in found]
    assert created == sorted(created, reverse=True)


def test_prip_valcover_in_and_t_intersects(simulator: RunningSimulator) -> None:
    client = open_client(simulator, "prip")
    every = list(
        client.search(
            collections=["prip"], filter={"op": "in", "args": [{"property": "product:type"}, ["IW_RAW__0S"]]}
        ).items()
    )
    assert every and all(i.properties["product:type"] == "IW_RAW__0S" for i in every)
    target = every[0]
    start, end = target.properties["start_datetime"], target.properties["end_datetime"]
    # CQL2 t_contains is strict at both ends: ask for the slice minus a second on each side.
    inner_start = (when(start) + timedelta(seconds=1)).isoformat()
    inner_end = (when(end) - timedelta(seconds=1)).isoformat()
    (covering,) = client.search(collections=["prip"], filter=valcover("IW_RAW__0S", inner_start, inner_end)).items()
    assert covering.id == target.id
    touching = list(
        client.search(collections=["prip"], filter=valcover("IW_RAW__0S", start, end, "t_intersects")).items()
    )
    assert target.id in {i.id for i in touching} and len(touching) >= 2  # neighbouring slices share an instant
    assert target.geometry is not None and target.bbox is not None


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_sortby_with_and_without_properties_prefix(simulator: RunningSimulator, method: str) -> None:
    client = open_client(simulator, "prip")
    ascending = [
        i.properties["datetime"]
        for i in client.search(collections=["prip"], sortby="+properties.datetime", method=method).items()
    ]
    assert ascending == sorted(ascending)
    descending = [
        i.properties["created"] for i in client.search(collections=["prip"], sortby="-created", method=method).items()
    ]
    assert descending == sorted(descending, reverse=True)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_paging_returns_every_item_once(simulator: RunningSimulator, method: str) -> None:
    client = open_client(simulator, "auxip")
    search = client.search(collections=["auxip_sentinel1"], limit=37, method=method)
    ids = [item.id for item in search.items()]
    assert search.matched() == len(ids) > 300
    assert len(set(ids)) == len(ids)
    reference = httpx.get(
        f"{simulator.url}/auxip/Products",
        params={"$filter": "startswith(Name,'S1')", "$count": "true", "$top": 0},
        headers=simulator.auth("auxip"),
    ).json()
    assert len(ids) == reference["@odata.count"]


def test_paging_with_filter_keeps_the_filter(simulator: RunningSimulator) -> None:
    client = open_client(simulator, "auxip")
    flt = {"op": "=", "args": [{"property": "product:type"}, "AUX_RESORB"]}
    items = list(client.search(collections=["auxip"], filter=flt, limit=9).items())
    assert len(items) == len({i.id for i in items}) > 9
    assert {i.properties["product:type"] for i in items} == {"AUX_RESORB"}


def test_datetime_open_interval_and_bbox(simulator: RunningSimulator) -> None:
    client = open_client(simulator, "prip")
    recent = list(client.search(collections=["prip"], datetime="2025-06-01T00:00:00Z/..").items())
    assert recent and all(when(i.properties["end_datetime"]) >= when("2025-06-01T00:00:00Z") for i in recent)
    older = list(client.search(collections=["prip"], datetime="../2025-06-01T00:00:00Z").items())
    assert {i.id for i in recent}.isdisjoint({i.id for i in older})
    target = older[0]
    x0, y0, *_ = target.bbox
    inside = list(client.search(collections=["prip"], bbox=[x0 + 0.1, y0 + 0.1, x0 + 0.2, y0 + 0.2]).items())
    assert target.id in {i.id for i in inside}


def test_collection_items_and_single_item_routes(simulator: RunningSimulator) -> None:
    client = open_client(simulator, "cadip")
    collection = client.get_collection("cadip_sentinel3")
    items = list(collection.get_items())
    assert items and all(i.properties["platform"].startswith("sentinel-3") for i in items)
    response = httpx.get(f"{simulator.url}/cadip/stac/collections/cadip_sentinel3/items", params={"limit": 1})
    assert response.status_code == 200 and len(response.json()["features"]) == 1
    single = httpx.get(f"{simulator.url}/cadip/stac/collections/cadip/items/{REAL_SESSION_ID}")
    assert single.status_code == 200 and single.json()["id"] == REAL_SESSION_ID


@pytest.mark.parametrize(
    ("method", "path", "payload", "status"),
    [
        ("POST", "/cadip/stac/search", {"filter": {"op": "nope"}}, 400),
        ("POST", "/cadip/stac/search", {"limit": 0}, 400),
        ("GET", "/cadip/stac/search", {"datetime": "yesterday"}, 400),
        ("GET", "/cadip/stac/search", {"token": "bogus"}, 400),
        ("GET", "/cadip/stac/collections/unknown", None, 404),
        ("GET", "/cadip/stac/collections/cadip/items/unknown", None, 404),
    ],
)
def test_invalid_requests(simulator: RunningSimulator, method: str, path: str, payload: Any, status: int) -> None:
    if method == "POST":
        response = httpx.post(simulator.url + path, json=payload)
    else:
        response = httpx.get(simulator.url + path, params=payload)
    assert response.status_code == status
    assert response.json()["code"]


def test_get_filter_as_cql2_json_string(simulator: RunningSimulator) -> None:
    response = httpx.get(
        f"{simulator.url}/cadip/stac/search",
        params={"filter-lang": "cql2-json", "filter": '{"op":"=","args":[{"property":"platform"},"sentinel-3a"]}'},
    )
    assert response.status_code == 200
    assert {f["properties"]["platform"] for f in response.json()["features"]} == {"sentinel-3a"}
