"""Fault injection through `/_faults`: outages, error rates, latency and broken downloads, per station."""

import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.simulator_server import RunningSimulator

REAL_SESSION_ID = "S1A_20241114143038056552"


@pytest.fixture(autouse=True)
async def no_faults_left(client: httpx.AsyncClient) -> AsyncIterator[None]:
    """Every test starts and ends without faults, with zeroed counters."""
    await client.delete("/_faults")
    await client.delete("/_stats")
    yield
    await client.delete("/_faults")


async def set_faults(client: httpx.AsyncClient, **faults: Any) -> dict[str, Any]:
    response = await client.put("/_faults", json=faults)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def a_chunk(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(
        "/cadip/Files", params={"$filter": f"SessionID eq '{REAL_SESSION_ID}'", "$top": 1}, headers=headers
    )
    return dict(response.json()["value"][0])


async def stream(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> tuple[bytes, Exception | None]:
    """Download `url`, returning what arrived and the transport error that stopped it, if any."""
    received = bytearray()
    try:
        async with client.stream("GET", url, headers=headers) as response:
            assert response.status_code in (200, 206)
            async for piece in response.aiter_raw():
                received += piece
    except httpx.TransportError as error:
        return bytes(received), error
    return bytes(received), None


async def test_put_get_delete(client: httpx.AsyncClient) -> None:
    state = await set_faults(
        client, error_rate=0.25, latency_ms=5, stations={"prip": {"outage": True, "latency_ms": 0}}
    )
    assert (await client.get("/_faults")).json() == state
    assert state["stations"] == {"prip": {"outage": True, "latency_ms": 0}}
    effective = state["effective"]
    assert (effective["prip"]["outage"], effective["prip"]["error_rate"], effective["prip"]["latency_ms"]) == (
        True,
        0.25,
        0,
    )
    assert effective["cadip"]["outage"] is False and effective["cadip"]["latency_ms"] == 5
    cleared = (await client.delete("/_faults")).json()
    assert all(not any(spec.values()) for spec in cleared["effective"].values())


@pytest.mark.parametrize(
    "body", [{"error_rate": 1.5}, {"latency_ms": -1}, {"unknown": True}, {"stations": {"lta": {"outage": True}}}]
)
async def test_invalid_faults_are_rejected(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    assert (await client.put("/_faults", json=body)).status_code == 422


async def test_outage_hits_every_route_of_one_station_only(
    client: httpx.AsyncClient, simulator: RunningSimulator
) -> None:
    cadip_headers = simulator.auth("cadip")
    await set_faults(client, stations={"prip": {"outage": True}})
    for method, path in (
        ("POST", "/prip/oauth2/token"),
        ("GET", "/prip/Products"),
        ("GET", "/prip/stac"),
        ("GET", "/prip/stac/search"),
        ("POST", "/prip/stac/search"),
    ):
        response = await client.request(method, path, json={} if method == "POST" else None)
        assert response.status_code == 503, path
    assert (await client.get("/cadip/Sessions", headers=cadip_headers)).status_code == 200
    assert (await client.get("/auxip/stac/search")).status_code == 200
    assert (await client.get("/health")).status_code == 200
    stats = (await client.get("/_stats")).json()
    assert stats["prip"]["errors_injected"] == 5
    assert stats["prip"]["faults_injected"] == {"outage": 5}
    assert stats["cadip"]["errors_injected"] == 0


async def test_error_rate_one_fails_everything_with_5xx(client: httpx.AsyncClient) -> None:
    await set_faults(client, stations={"auxip": {"error_rate": 1.0}})
    statuses = [(await client.get("/auxip/stac/search")).status_code for _ in range(20)]
    assert set(statuses) <= {500, 502, 503}
    assert len(set(statuses)) > 1
    assert (await client.get("/_stats")).json()["auxip"]["errors_injected"] == 20


async def test_error_rate_is_a_seeded_fraction(client: httpx.AsyncClient) -> None:
    """About half fail, and re-setting the same faults replays the same sequence."""
    runs = []
    for _ in range(2):
        await set_faults(client, error_rate=0.5)
        runs.append([(await client.get("/cadip/stac/conformance")).status_code for _ in range(40)])
    assert runs[0] == runs[1]
    failures = sum(status != 200 for status in runs[0])
    assert 8 <= failures <= 32


async def test_latency_applies_to_its_station(client: httpx.AsyncClient) -> None:
    await set_faults(client, stations={"cadip": {"latency_ms": 300}})
    started = time.perf_counter()
    assert (await client.get("/cadip/stac/conformance")).status_code == 200
    assert time.perf_counter() - started >= 0.3
    started = time.perf_counter()
    assert (await client.get("/prip/stac/conformance")).status_code == 200
    assert time.perf_counter() - started < 0.25


async def test_corrupt_download_keeps_length_but_not_md5(
    client: httpx.AsyncClient, simulator: RunningSimulator
) -> None:
    headers = simulator.auth("cadip")
    chunk = await a_chunk(client, headers)
    await set_faults(client, corrupt_rate=1.0)
    data, error = await stream(client, f"/cadip/Files({chunk['Id']})/$value", headers)
    assert error is None
    assert len(data) == chunk["Size"]
    assert hashlib.md5(data).hexdigest() != chunk["Checksum"][0]["Value"]
    assert (await client.get("/_stats")).json()["cadip"]["faults_injected"] == {"corrupt": 1}


async def test_truncated_download_resumes_with_range(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    """The client sees a short body; a Range request from where it stopped completes the file."""
    headers = simulator.auth("cadip")
    chunk = await a_chunk(client, headers)
    url = f"/cadip/Files({chunk['Id']})/$value"
    await set_faults(client, truncate_rate=1.0)
    first, error = await stream(client, url, headers)
    assert isinstance(error, httpx.RemoteProtocolError)
    assert len(first) < chunk["Size"]
    await client.delete("/_faults")
    rest, error = await stream(client, url, headers | {"Range": f"bytes={len(first)}-"})
    assert error is None
    assert hashlib.md5(first + rest).hexdigest() == chunk["Checksum"][0]["Value"]


async def test_reset_breaks_the_connection(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    headers = simulator.auth("prip")
    product = (await client.get("/prip/Products", params={"$top": 1}, headers=headers)).json()["value"][0]
    await set_faults(client, stations={"prip": {"reset_rate": 1.0}})
    for _ in range(3):
        data, error = await stream(client, f"/prip/Products({product['Id']})/$value", headers)
        assert isinstance(error, httpx.RemoteProtocolError)
        assert len(data) < product["ContentLength"]
    stats = (await client.get("/_stats")).json()["prip"]
    assert stats["faults_injected"] == {"reset": 3}
    assert stats["downloads_in_flight"] == 0
    assert stats["downloads"] == 3


async def test_download_faults_leave_other_stations_alone(
    client: httpx.AsyncClient, simulator: RunningSimulator
) -> None:
    headers = simulator.auth("cadip")
    chunk = await a_chunk(client, headers)
    await set_faults(client, stations={"auxip": {"reset_rate": 1.0, "truncate_rate": 0, "corrupt_rate": 0}})
    data, error = await stream(client, f"/cadip/Files({chunk['Id']})/$value", headers)
    assert error is None and hashlib.md5(data).hexdigest() == chunk["Checksum"][0]["Value"]
