"""Named stations and the ICD variety they show: ICD-only, no Files expansion, no checksums, sizes as strings,
server-driven paging, redirects to a second host, short-lived tokens, incomplete sessions."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.support.simulator_server import RunningSimulator, run_simulator

REAL_SESSION_ID = "S1A_20241114143038056552"
QUIRKY = {
    "kind": "cadip",
    "stac": False,
    "expand_files": False,
    "checksums": False,
    "sizes_as_strings": True,
    "page_size": 5,
    "redirect_host": "localhost",
    "token_expires_in": 2,
}
STATIONS = {"ins": QUIRKY, "mti": {"kind": "cadip"}, "aux2": {"kind": "auxip", "stac": False, "page_size": 7}}


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    with run_simulator(tmp_path_factory.mktemp("named"), stations=json.dumps(STATIONS)) as running:
        yield running


@pytest.fixture
async def http(named: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=named.url, timeout=60) as client:
        yield client


async def every_page(http: httpx.AsyncClient, sim: RunningSimulator, url: str, **params: Any) -> list[dict[str, Any]]:
    """Every entity of a listing, following `@odata.nextLink` as a client must."""
    headers = sim.auth(url.strip("/").split("/")[0])
    values: list[dict[str, Any]] = []
    response = await http.get(url, params=params, headers=headers)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        values += body["value"]
        if "@odata.nextLink" not in body:
            return values
        response = await http.get(body["@odata.nextLink"], headers=headers)


async def test_icd_only_station_has_no_stac_facade(http: httpx.AsyncClient, named: RunningSimulator) -> None:
    assert (await http.get("/ins/stac/search")).status_code == 404
    assert (await http.get("/mti/stac/search", params={"ids": REAL_SESSION_ID})).json()["numberReturned"] == 1
    sessions = await http.get("/ins/Sessions", params={"$top": 1}, headers=named.auth("ins"))
    assert sessions.status_code == 200


async def test_a_token_of_one_named_station_is_unknown_to_another(
    http: httpx.AsyncClient, named: RunningSimulator
) -> None:
    response = await http.get("/mti/Sessions", params={"$top": 1}, headers=named.auth("ins"))
    assert response.status_code == 401
    assert response.json()["message"] == "Token is invalid!"


async def test_no_expansion_no_checksum_and_sizes_as_strings(http: httpx.AsyncClient, named: RunningSimulator) -> None:
    query = {"$filter": f"SessionId eq '{REAL_SESSION_ID}'", "$expand": "Files"}
    (session,) = (await http.get("/ins/Sessions", params=query, headers=named.auth("ins"))).json()["value"]
    assert "Files" not in session
    (expanded,) = (await http.get("/mti/Sessions", params=query, headers=named.auth("mti"))).json()["value"]
    files = await every_page(http, named, "/ins/Files", **{"$filter": f"SessionId eq '{REAL_SESSION_ID}'"})
    assert {f["Id"]: f["Size"] for f in files} == {f["Id"]: str(f["Size"]) for f in expanded["Files"]}
    assert all("Checksum" not in f for f in files) and all("Checksum" in f for f in expanded["Files"])


async def test_next_links_page_through_exactly_what_skip_and_top_ask(
    http: httpx.AsyncClient, named: RunningSimulator
) -> None:
    params = {"$filter": f"SessionId eq '{REAL_SESSION_ID}'", "$orderby": "Channel asc,BlockNumber asc"}
    reference = await every_page(http, named, "/mti/Files", **params)
    assert len(reference) == 38
    first = await http.get("/ins/Files", params=params, headers=named.auth("ins"))
    assert len(first.json()["value"]) == 5 and "@odata.nextLink" in first.json()
    paged = await every_page(http, named, "/ins/Files", **params)
    assert [f["Id"] for f in paged] == [f["Id"] for f in reference]
    window = await every_page(http, named, "/ins/Files", **params, **{"$skip": 3, "$top": 12})
    assert [f["Id"] for f in window] == [f["Id"] for f in reference[3:15]]
    products = await every_page(http, named, "/aux2/Products", **{"$orderby": "PublicationDate desc"})
    assert len(products) == len(await every_page(http, named, "/auxip/Products")) > 7


async def test_downloads_redirect_to_a_second_host_that_wants_the_token(
    http: httpx.AsyncClient, named: RunningSimulator
) -> None:
    files = await every_page(http, named, "/ins/Files", **{"$filter": f"SessionId eq '{REAL_SESSION_ID}'"})
    headers = named.auth("ins")
    response = await http.get(f"/ins/Files({files[0]['Id']})/$value", headers=headers)
    assert response.status_code == 307
    target = httpx.URL(response.headers["location"])
    assert target.host == "localhost" and target.port == httpx.URL(named.url).port
    assert (await http.get(str(target))).status_code == 401
    body = await http.get(str(target), headers=headers)
    assert body.status_code == 200 and len(body.content) == int(files[0]["Size"])


async def test_a_station_token_expires_on_its_own_schedule(http: httpx.AsyncClient, named: RunningSimulator) -> None:
    grant = named.token_response("ins")
    assert grant["expires_in"] == 2
    assert named.token_response("mti")["expires_in"] > 2
    headers = {"Authorization": f"Bearer {grant['access_token']}"}
    assert (await http.get("/ins/Sessions", params={"$top": 1}, headers=headers)).status_code == 200
    await asyncio.sleep(2.2)
    expired = await http.get("/ins/Sessions", params={"$top": 1}, headers=headers)
    assert (expired.status_code, expired.json()["message"]) == (401, "Token is valid but is expired!")


async def test_an_incomplete_session_lacks_a_final_block(http: httpx.AsyncClient, named: RunningSimulator) -> None:
    spec = {"session_id": "S1A_INCOMPLETE_1", "channels": 3, "chunks_per_channel": 2, "chunk_size": 1000}
    created = await http.post("/_catalogue/sessions", json=spec | {"missing_final_block": [2]})
    assert created.status_code == 201, created.text
    files = await every_page(http, named, "/mti/Files", **{"$filter": "SessionId eq 'S1A_INCOMPLETE_1'"})
    finals = sorted(f["Channel"] for f in files if f["FinalBlock"])
    assert (len(files), finals) == (6, [1, 3])
    refused = await http.post("/_catalogue/sessions", json=spec | {"missing_final_block": [4]})
    assert refused.status_code == 422


async def test_faults_and_stats_are_per_named_station(http: httpx.AsyncClient, named: RunningSimulator) -> None:
    await http.delete("/_stats")
    try:
        assert (await http.put("/_faults", json={"stations": {"mti": {"outage": True}}})).status_code == 200
        assert (await http.get("/mti/Sessions", headers=named.auth("ins"))).status_code == 503
        assert (await http.get("/ins/Sessions", params={"$top": 1}, headers=named.auth("ins"))).status_code == 200
        unknown = await http.put("/_faults", json={"stations": {"nope": {"outage": True}}})
        assert unknown.status_code == 422 and "nope" in unknown.text
    finally:
        await http.delete("/_faults")
    stats = (await http.get("/_stats")).json()
    assert set(stats) == {"cadip", "auxip", "prip", "ins", "mti", "aux2"}
    assert stats["mti"]["faults_injected"] == {"outage": 1}
    assert stats["ins"]["faults_injected"] == {}


def test_bad_station_names_are_refused_at_start(tmp_path_factory: pytest.TempPathFactory) -> None:
    with (
        pytest.raises(RuntimeError, match="station name"),
        run_simulator(tmp_path_factory.mktemp("bad"), stations=json.dumps({"Bad Name": {"kind": "cadip"}})),
    ):
        pass
