"""Part 2, expired tokens: the station's OAuth2 tokens lapse or are forgotten in the middle of a request.

How the simulator expires tokens: only by its process settings `SIMULATOR_TOKEN_EXPIRES_IN` and
`SIMULATOR_REFRESH_EXPIRES_IN` (rs_simulator/auth.py; there is no `/_faults` key for it), checked when a request
arrives (a download already streaming is not cut). The worker renews a token `TOKEN_MARGIN_S` (60 s) before its
announced expiry (rs_ondemand/activities/stations.py), so a short lifetime alone makes it renew before each use
and never present an expired token. So, on the tests' own stack (its simulator restarted with other settings):
- lifetimes just over that margin: the worker's tokens lapse every second (refresh tokens every 3 s) all along
  the transfers, so it renews them (refresh grant, then password grant) mid-request;
- the station forgets every token (simulator restarted) mid-transfer: the worker's cached token is refused with
  401, which is the path of a token that expired or was revoked under it: it must log in again by itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import Client

from rs_ondemand.activities.stations import TOKEN_MARGIN_S
from rs_ondemand.config import Settings
from rs_ondemand.models.progress import Progress, State
from rs_ondemand.names import PROGRESS_QUERY
from tests.helpers import Simulator
from tests.reliability._support import (
    MiB,
    assert_session_staged,
    new_session,
    progress_until,
    result_of,
    start_staging,
    station_assets,
)
from tests.reliability.conftest import OwnStack, WorkerProcess

TOKEN_ROUTE = "POST /cadip/oauth2/token"
SAMPLE_SESSION = "S1A_20241114143038056552"
"""The real session the simulator seeds at every start: it is still there after a restart."""


def downloads_refused(stats: dict[str, Any]) -> int:
    """`$value` requests answered without a body (no fault is injected here: refused by the token check)."""
    value_requests = sum(count for route, count in stats["by_route"].items() if route.endswith("/$value"))
    return value_requests - stats["downloads"]


async def test_tokens_lapsing_all_along_the_transfers_are_renewed_mid_request(
    own_stack: OwnStack,
    own_settings: Settings,
    own_client: Client,
    own_s3: Any,
    own_worker: WorkerProcess,
    own_collection: str,
) -> None:
    access_s, refresh_s = TOKEN_MARGIN_S + 1, TOKEN_MARGIN_S + 3  # the worker's view: 1 s and 3 s
    await asyncio.to_thread(own_stack.stop, "simulator")
    try:
        await asyncio.to_thread(
            own_stack.restore,
            SIMULATOR_TOKEN_EXPIRES_IN=str(access_s),
            SIMULATOR_REFRESH_EXPIRES_IN=str(refresh_s),
        )
        simulator = Simulator(own_stack.info.env["SIMULATOR_URL"])
        try:
            chunks = 24
            session = new_session(simulator, chunks, chunk_size=MiB)
            simulator.faults(cadip={"latency_ms": 400})  # ~ 3 s of transfers
            handle = await start_staging(own_client, own_worker.queue, session, own_collection)
            result = await result_of(handle)
            stats = simulator.stats("cadip")
            assert own_settings.cadip.url
            station = station_assets(own_settings.cadip.url, "cadip", session)  # before the simulator forgets it
        finally:
            simulator.clear_faults()
            simulator.close()
    finally:  # the default lifetimes again, for the other tests of this stack
        await asyncio.to_thread(own_stack.stop, "simulator")
        await asyncio.to_thread(own_stack.restore)

    assert result.staging.assets_staged == chunks
    assert stats["by_route"].get(TOKEN_ROUTE, 0) >= 3, stats["by_route"]  # renewed along the way
    assert downloads_refused(stats) == 0  # renewed before the station refused anything
    assert stats["downloads"] == chunks
    assert_session_staged(own_settings, own_s3, own_collection, session, handle.id, station)


async def test_a_station_forgetting_its_tokens_mid_transfer_is_logged_into_again(
    own_stack: OwnStack,
    own_settings: Settings,
    own_client: Client,
    own_s3: Any,
    own_simulator: Simulator,
    own_worker: WorkerProcess,
    own_collection: str,
) -> None:
    own_simulator.faults(cadip={"latency_ms": 500})
    handle = await start_staging(own_client, own_worker.queue, SAMPLE_SESSION, own_collection)
    before = await progress_until(handle, lambda p: p.assets_done >= 3)
    assert before.assets_done < before.assets_total
    await asyncio.to_thread(own_stack.stop, "simulator")
    await asyncio.to_thread(own_stack.restore)  # a new process: no token it issued before is known
    own_simulator.faults(cadip={"latency_ms": 500})
    result = await result_of(handle)

    stats = own_simulator.stats("cadip")  # since the restart
    assert downloads_refused(stats) >= 1, stats  # the worker's token was refused…
    assert stats["by_route"].get(TOKEN_ROUTE, 0) >= 1  # …and it got a new one itself
    assert result.staging.staged == [SAMPLE_SESSION]
    assert (await handle.query(PROGRESS_QUERY, result_type=Progress)).state == State.COMPLETED
    assert_session_staged(own_settings, own_s3, own_collection, SAMPLE_SESSION, handle.id)
