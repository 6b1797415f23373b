"""`/_catalogue` additions: generated sessions (up to multi-GiB chunks) and products, deterministic."""

import hashlib
from typing import Any

import httpx
import pytest
from pystac_client import Client

from rs_simulator.cadu import CADU_BYTES, SPACECRAFT_IDS, decode_headers
from tests.support.simulator_server import RunningSimulator

GIB = 1 << 30


async def add_session(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/_catalogue/sessions", json=body)


async def files(
    client: httpx.AsyncClient, simulator: RunningSimulator, session_id: str, **params: str
) -> dict[str, Any]:
    query = {"$filter": f"SessionId eq '{session_id}'", "$count": "true", **params}
    response = await client.get("/cadip/Files", params=query, headers=simulator.auth("cadip"))
    assert response.status_code == 200
    return dict(response.json())


async def test_session_of_a_thousand_chunks(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    body = {"satellite": "S2B", "channels": 2, "chunks_per_channel": 500, "chunk_size": 4096}
    created = await add_session(client, **body)
    assert created.status_code == 201
    answer = created.json()
    session = answer["session"]
    assert answer["total_size"] == 1000 * 4096 and answer["file_count"] == 1000
    assert "Files" not in session
    assert session["SessionId"].startswith("S2B_") and session["NumChannels"] == 2
    again = await add_session(client, **body)
    assert again.status_code == 200 and again.json() == answer
    listed = await files(client, simulator, session["SessionId"], **{"$top": "2000"})
    assert listed["@odata.count"] == 1000
    assert {f["Size"] for f in listed["value"]} == {4096}
    assert sum(f["FinalBlock"] for f in listed["value"]) == 2
    stac = Client.open(f"{simulator.url}/cadip/stac")
    (item,) = stac.search(ids=[session["SessionId"]], collections=["cadip_sentinel2"]).items()
    assert len(item.assets) == 1000
    assert len({a.href for a in item.assets.values()}) == 1000


async def test_session_id_conflict(client: httpx.AsyncClient) -> None:
    first = await add_session(client, session_id="S1C_CONFLICT", satellite="S1C", chunks_per_channel=2)
    assert first.status_code == 201
    assert first.json()["total_size"] == 2 * 2 * 256 * 1024  # the simulator's default chunk size
    other = await add_session(client, session_id="S1C_CONFLICT", satellite="S1C", chunks_per_channel=3)
    assert other.status_code == 409


async def test_publication_date_is_kept_for_polling(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    created = await add_session(client, satellite="S3A", chunks_per_channel=1, publication_date="2026-03-01T10:00:00Z")
    session = created.json()["session"]
    assert session["PublicationDate"] == "2026-03-01T10:00:00.000Z"
    response = await client.get(
        "/cadip/Sessions",
        params={"$filter": "PublicationDate gt 2026-02-28T00:00:00.000Z"},
        headers=simulator.auth("cadip"),
    )
    assert [s["SessionId"] for s in response.json()["value"]] == [session["SessionId"]]


@pytest.mark.parametrize(
    "body",
    [{"chunks_per_channel": 0}, {"chunks_per_channel": 1, "channels": 64}, {"chunks_per_channel": 1, "satellite": "X"}],
)
async def test_invalid_session_requests(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    assert (await add_session(client, **body)).status_code == 422


async def test_two_gib_chunk_reads_ranges_without_memory_growth(
    client: httpx.AsyncClient, simulator: RunningSimulator
) -> None:
    """A 2 GiB chunk costs no memory: size and ranges are served without generating the rest."""
    size = 2 * GIB
    created = await add_session(client, session_id="S1A_TWO_GIB", channels=1, chunks_per_channel=1, chunk_size=size)
    assert created.json()["total_size"] == size
    # $select without Checksum: listing the file does not hash 2 GiB.
    (chunk,) = (await files(client, simulator, "S1A_TWO_GIB", **{"$select": "Id,Size"}))["value"]
    assert chunk["Size"] == size
    url, headers = f"/cadip/Files({chunk['Id']})/$value", simulator.auth("cadip")
    rss_before = simulator.rss_bytes()
    head = await client.head(url, headers=headers)
    assert int(head.headers["content-length"]) == size
    for offset in (0, size // 2 + 5, size - 4 * CADU_BYTES):
        response = await client.get(url, headers=headers | {"Range": f"bytes={offset}-{offset + (1 << 20) - 1}"})
        assert response.status_code == 206
        data = response.content
        assert len(data) == min(1 << 20, size - offset)
        aligned = -offset % CADU_BYTES  # skip to the next frame boundary
        frames = decode_headers(data[aligned:])
        first_frame = (offset + aligned) // CADU_BYTES
        assert [c for _, _, c in frames] == [(first_frame + i) % (1 << 24) for i in range(len(frames))]
        assert {(s, v) for s, v, _ in frames} == {(SPACECRAFT_IDS["S1A"], 1)}
    tail = await client.get(url, headers=headers | {"Range": "bytes=-1000"})
    assert tail.headers["content-range"] == f"bytes {size - 1000}-{size - 1}/{size}"
    assert simulator.rss_bytes() - rss_before < 64 * 1024 * 1024


@pytest.mark.parametrize("station", ["prip", "auxip"])
async def test_products_are_added_deterministically(
    client: httpx.AsyncClient, simulator: RunningSimulator, station: str
) -> None:
    product_type = "IW_RAW__0S" if station == "prip" else "AUX_RESORB"
    body = {
        "station": station,
        "product_type": product_type,
        "count": 5,
        "start": "2026-05-01T00:00:00Z",
        "step_seconds": 25,
        "validity_seconds": 25,
        "satellite": "S1C",
    }
    created = await client.post("/_catalogue/products", json=body)
    assert created.status_code == 201
    answer = created.json()
    assert answer["added"] == 5 and len(answer["products"]) == 5
    again = await client.post("/_catalogue/products", json=body)
    assert again.status_code == 200 and again.json()["products"] == answer["products"]
    assert again.json()["added"] == 0
    stac = Client.open(f"{simulator.url}/{station}/stac")
    items = list(
        stac.search(
            collections=[f"{station}_sentinel1"],
            datetime="2026-05-01T00:00:00Z/2026-05-01T00:02:05Z",
            filter={"op": "=", "args": [{"property": "product:type"}, product_type]},
            sortby="+datetime",
        ).items()
    )
    assert len(items) == 5
    assert [i.properties["start_datetime"] for i in items] == [
        f"2026-05-01T00:0{s // 60}:{s % 60:02d}.000Z" for s in range(0, 125, 25)
    ]
    assert all(i.properties["platform"] == "sentinel-1c" for i in items)
    asset = next(iter(items[0].assets.values()))
    data = (await client.get(asset.href, headers=simulator.auth(station))).content
    assert "d50110" + hashlib.md5(data).hexdigest() == asset.extra_fields["file:checksum"]
    if station == "auxip":
        assert data.startswith(b"<?xml") and b"<File_Type>AUX_RESORB</File_Type>" in data
    else:
        assert len(data) == 128 * 1024


async def test_product_size_is_honoured(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    body = {
        "station": "prip",
        "product_type": "S2MSI1C",
        "start": "2026-06-01T00:00:00Z",
        "validity_seconds": 6,
        "size": 3_000_001,
        "satellite": "S2B",
    }
    (product,) = (await client.post("/_catalogue/products", json=body)).json()["products"]
    assert product["ContentLength"] == 3_000_001
    assert product["Name"].startswith("S2B_MSIL1C_20260601T000000_")
    head = await client.head(f"/prip/Products({product['Id']})/$value", headers=simulator.auth("prip"))
    assert int(head.headers["content-length"]) == 3_000_001
