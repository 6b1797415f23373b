"""`$value` downloads: whole files, HTTP ranges, MD5 against Checksum, CADU layout, 307 redirects."""

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rs_simulator.cadu import CADU_BYTES, SPACECRAFT_IDS, SYNC_MARKER, decode_headers
from tests.support.simulator_server import RunningSimulator, run_simulator

REAL_SESSION_ID = "S1A_20241114143038056552"


@pytest.fixture(scope="module")
def redirecting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    """A second simulator, same seed, answering `$value` with 307 like the RS CADIP mock."""
    with run_simulator(tmp_path_factory.mktemp("redirecting"), redirect_downloads=True) as running:
        yield running


async def files_of(client: httpx.AsyncClient, simulator: RunningSimulator, session_id: str) -> list[dict[str, Any]]:
    response = await client.get(
        "/cadip/Files",
        params={"$filter": f"SessionID eq '{session_id}'", "$orderby": "Channel asc,BlockNumber asc"},
        headers=simulator.auth("cadip"),
    )
    assert response.status_code == 200
    return list(response.json()["value"])


async def products_of(client: httpx.AsyncClient, simulator: RunningSimulator, station: str) -> list[dict[str, Any]]:
    response = await client.get(f"/{station}/Products", headers=simulator.auth(station))
    return list(response.json()["value"])


async def test_whole_chunk_matches_size_and_md5(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    chunk = (await files_of(client, simulator, REAL_SESSION_ID))[0]
    response = await client.get(f"/cadip/Files({chunk['Id']})/$value", headers=simulator.auth("cadip"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["accept-ranges"] == "bytes"
    assert int(response.headers["content-length"]) == chunk["Size"] == len(response.content)
    assert hashlib.md5(response.content).hexdigest() == chunk["Checksum"][0]["Value"]


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-0", 0, 1), ("bytes=1000-5095", 1000, 5096), ("bytes=200000-", 200000, None), ("bytes=-700", -700, None)],
)
async def test_range_requests(
    client: httpx.AsyncClient, simulator: RunningSimulator, header: str, start: int, end: int | None
) -> None:
    chunk = (await files_of(client, simulator, REAL_SESSION_ID))[1]
    url, headers = f"/cadip/Files({chunk['Id']})/$value", simulator.auth("cadip")
    whole = (await client.get(url, headers=headers)).content
    response = await client.get(url, headers=headers | {"Range": header})
    assert response.status_code == 206
    expected = whole[start:end]
    assert response.content == expected
    first = start % len(whole)
    assert response.headers["content-range"] == f"bytes {first}-{first + len(expected) - 1}/{len(whole)}"
    assert int(response.headers["content-length"]) == len(expected)


async def test_range_beyond_the_end_is_not_satisfiable(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    chunk = (await files_of(client, simulator, REAL_SESSION_ID))[0]
    response = await client.get(
        f"/cadip/Files({chunk['Id']})/$value", headers=simulator.auth("cadip") | {"Range": f"bytes={chunk['Size']}-"}
    )
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{chunk['Size']}"


async def test_head_gives_length_without_body(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    chunk = (await files_of(client, simulator, REAL_SESSION_ID))[0]
    response = await client.head(f"/cadip/Files({chunk['Id']})/$value", headers=simulator.auth("cadip"))
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == chunk["Size"]
    assert response.content == b""


async def test_unknown_file_is_not_found(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    response = await client.get("/cadip/Files(nope)/$value", headers=simulator.auth("cadip"))
    assert response.status_code == 404


async def test_cadu_frames_decode_with_continuous_counters(
    client: httpx.AsyncClient, simulator: RunningSimulator
) -> None:
    """Every chunk is CADUs: sync marker, S1A spacecraft id, channel as VCID, counters continuing across blocks."""
    files = await files_of(client, simulator, REAL_SESSION_ID)
    headers = simulator.auth("cadip")
    for channel in (1, 2):
        in_channel = [f for f in files if f["Channel"] == channel]  # ordered by BlockNumber
        expected_counter = 0
        for chunk in [*in_channel[:3], in_channel[-1]]:
            data = (await client.get(f"/cadip/Files({chunk['Id']})/$value", headers=headers)).content
            frames = decode_headers(data)
            assert len(frames) == -(-chunk["Size"] // CADU_BYTES)  # the last frame may be cut
            assert all(data[i : i + 4] == SYNC_MARKER for i in range(0, len(data), CADU_BYTES))
            assert {(scid, vcid) for scid, vcid, _ in frames} == {(SPACECRAFT_IDS["S1A"], channel)}
            counters = [counter for _, _, counter in frames]
            assert counters == list(range(counters[0], counters[0] + len(counters)))
            if chunk["FinalBlock"]:  # follows every block before it, cut last frames included
                expected_counter = sum(-(-f["Size"] // CADU_BYTES) for f in in_channel[:-1])
            assert counters[0] == expected_counter
            expected_counter += len(frames)


@pytest.mark.parametrize("station", ["auxip", "prip"])
async def test_product_download_matches_checksum(
    client: httpx.AsyncClient, simulator: RunningSimulator, station: str
) -> None:
    products = await products_of(client, simulator, station)
    for product in (products[0], products[-1]):
        response = await client.get(f"/{station}/Products({product['Id']})/$value", headers=simulator.auth(station))
        assert response.status_code == 200
        assert len(response.content) == product["ContentLength"]
        assert hashlib.md5(response.content).hexdigest() == product["Checksum"][0]["Value"]
        if station == "prip":
            assert product["ContentLength"] == 128 * 1024


async def test_orbit_file_is_an_earth_explorer_document(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    response = await client.get(
        "/auxip/Products",
        params={
            "$filter": "startswith(Name,'S1A_OPER_AUX_POEORB_OPOD_') and ContentDate/Start le 2024-11-14T14:30:00Z "
            "and ContentDate/End ge 2024-11-14T14:33:00Z"
        },
        headers=simulator.auth("auxip"),
    )
    (product,) = response.json()["value"]
    body = await client.get(f"/auxip/Products({product['Id']})/$value", headers=simulator.auth("auxip"))
    root = ET.fromstring(body.content)
    assert root.tag == "Earth_Explorer_File"
    header = root.find("Earth_Explorer_Header/Fixed_Header")
    assert header is not None
    assert header.findtext("File_Name") == product["Name"].removesuffix(".EOF")
    assert header.findtext("File_Type") == "AUX_POEORB"
    start = header.findtext("Validity_Period/Validity_Start")
    assert start == "UTC=" + product["ContentDate"]["Start"][:19]
    osvs = root.findall("Data_Block/List_of_OSVs/OSV")
    assert len(osvs) >= 3
    for osv in osvs:
        position = [float(osv.findtext(axis) or "nan") for axis in ("X", "Y", "Z")]
        radius = sum(p * p for p in position) ** 0.5
        assert 6.9e6 < radius < 7.2e6  # a low Earth orbit, in metres
        assert (osv.findtext("UTC") or "").startswith("UTC=")
        assert all(osv.findtext(v) for v in ("VX", "VY", "VZ"))


async def test_redirect_when_enabled(redirecting: RunningSimulator) -> None:
    """307 to `/cadip/Redirect/Files(<Id>)/$value` on the same host; the target needs the token too."""
    headers = redirecting.auth("cadip")
    async with httpx.AsyncClient(base_url=redirecting.url) as http:
        (chunk, *_) = await files_of(http, redirecting, REAL_SESSION_ID)
        response = await http.get(f"/cadip/Files({chunk['Id']})/$value", headers=headers)
        assert response.status_code == 307
        assert response.headers["location"] == f"{redirecting.url}/cadip/Redirect/Files({chunk['Id']})/$value"
        assert (await http.get(response.headers["location"])).status_code == 401
        followed = await http.get(f"/cadip/Files({chunk['Id']})/$value", headers=headers, follow_redirects=True)
        assert followed.status_code == 200
        assert hashlib.md5(followed.content).hexdigest() == chunk["Checksum"][0]["Value"]
        product = (await products_of(http, redirecting, "prip"))[0]
        ranged = await http.get(
            f"/prip/Products({product['Id']})/$value",
            headers=redirecting.auth("prip") | {"Range": "bytes=10-19"},
            follow_redirects=True,
        )
        assert ranged.status_code == 206 and len(ranged.content) == 10


async def test_same_settings_serve_identical_data(
    client: httpx.AsyncClient, simulator: RunningSimulator, redirecting: RunningSimulator
) -> None:
    """Two processes with the same seed (credentials apart) serve the same catalogues and bytes."""
    async with httpx.AsyncClient(base_url=redirecting.url) as other:
        for station, entity_set in (
            ("cadip", "Sessions"),
            ("cadip", "Files"),
            ("auxip", "Products"),
            ("prip", "Products"),
        ):
            params = {"$expand": "Files"} if entity_set == "Sessions" else {}
            mine = await client.get(f"/{station}/{entity_set}", params=params, headers=simulator.auth(station))
            theirs = await other.get(f"/{station}/{entity_set}", params=params, headers=redirecting.auth(station))
            assert mine.json() == theirs.json()
        chunk = (await files_of(client, simulator, REAL_SESSION_ID))[5]
        path = f"/cadip/Redirect/Files({chunk['Id']})/$value"
        mine_bytes = await client.get(path, headers=simulator.auth("cadip"))
        theirs_bytes = await other.get(path, headers=redirecting.auth("cadip"))
        assert mine_bytes.content == theirs_bytes.content
