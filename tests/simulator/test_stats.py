"""`/_stats` counters: requests by route, downloads, bytes served, downloads in flight and their maximum."""

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import httpx

from tests.support.simulator_server import RunningSimulator

CHUNK = 8 * 1024 * 1024


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    return dict((await client.get("/_stats")).json())


async def big_chunks(
    client: httpx.AsyncClient, headers: dict[str, str], count: int, size: int = CHUNK
) -> list[dict[str, Any]]:
    """A session of `count` chunks of `size` bytes: big enough that downloads overlap."""
    session_id = f"S1A_STATS_{count}_{size}"
    body = {"session_id": session_id, "channels": 1, "chunks_per_channel": count, "chunk_size": size}
    assert (await client.post("/_catalogue/sessions", json=body)).status_code in (200, 201)
    params = {"$filter": f"SessionId eq '{session_id}'", "$select": "Id,Size", "$orderby": "BlockNumber asc"}
    return list((await client.get("/cadip/Files", params=params, headers=headers)).json()["value"])


async def test_requests_are_counted_by_route(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    headers = simulator.auth("prip")
    await client.delete("/_stats")
    for _ in range(3):
        await client.get("/prip/Products", headers=headers)
    await client.post("/prip/stac/search", json={"limit": 1})
    counters = (await stats(client))["prip"]
    assert counters["by_route"] == {"GET /prip/Products": 3, "POST /prip/stac/search": 1}
    assert counters["requests"] == 4
    assert set(counters) >= {
        "downloads",
        "bytes_served",
        "downloads_in_flight",
        "max_downloads_in_flight",
        "errors_injected",
    }
    assert (await stats(client))["cadip"]["requests"] == 0


async def test_concurrent_downloads_are_counted_in_flight(
    client: httpx.AsyncClient, simulator: RunningSimulator
) -> None:
    headers = simulator.auth("cadip")
    chunks = await big_chunks(client, headers, 4)
    await client.delete("/_stats")
    async with AsyncExitStack() as streams:
        responses = [
            await streams.enter_async_context(client.stream("GET", f"/cadip/Files({c['Id']})/$value", headers=headers))
            for c in chunks
        ]
        during = (await stats(client))["cadip"]
        assert during["downloads_in_flight"] == during["max_downloads_in_flight"] == 4

        async def drain(response: httpx.Response) -> int:
            return sum([len(piece) async for piece in response.aiter_raw()])

        received = await asyncio.gather(*(drain(r) for r in responses))
    assert received == [CHUNK] * 4
    after = (await stats(client))["cadip"]
    assert after["downloads"] == 4
    assert after["downloads_in_flight"] == 0
    assert after["max_downloads_in_flight"] == 4
    assert after["bytes_served"] == 4 * CHUNK


async def test_client_disconnect_ends_the_download(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    headers = simulator.auth("cadip")
    # Far more than loopback socket buffers hold, so the server cannot have sent it all.
    (chunk,) = await big_chunks(client, headers, 1, 16 * CHUNK)
    await client.delete("/_stats")
    async with client.stream("GET", f"/cadip/Files({chunk['Id']})/$value", headers=headers) as response:
        async for _ in response.aiter_raw():
            break  # leave after the first piece: the client closes the connection
    for _ in range(50):
        counters = (await stats(client))["cadip"]
        if counters["downloads_in_flight"] == 0:
            break
        await asyncio.sleep(0.1)
    assert counters["downloads_in_flight"] == 0
    assert counters["max_downloads_in_flight"] == 1
    assert 0 < counters["bytes_served"] < chunk["Size"]


async def test_delete_resets_counters(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    await client.get("/auxip/stac/search")
    assert (await stats(client))["auxip"]["requests"] > 0
    reset = (await client.delete("/_stats")).json()
    assert all(
        s["requests"] == s["bytes_served"] == s["downloads"] == 0 and s["by_route"] == {} for s in reset.values()
    )
