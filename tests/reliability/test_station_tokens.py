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

from typing import Any

from rs_ondemand.activities.stations import TOKEN_MARGIN_S
from tests.support.cadip_staging import MiB
from tests.support.own_stack import StagingRun

TOKEN_ROUTE = "POST /cadip/oauth2/token"
SAMPLE_SESSION = "S1A_20241114143038056552"
"""The real session the simulator seeds at every start: it is still there after a restart."""


def downloads_refused(stats: dict[str, Any]) -> int:
    """`$value` requests answered without a body (no fault is injected here: refused by the token check)."""
    value_requests = sum(count for route, count in stats["by_route"].items() if route.endswith("/$value"))
    return value_requests - stats["downloads"]


async def test_tokens_lapsing_all_along_the_transfers_are_renewed_mid_request(run: StagingRun) -> None:
    access_s, refresh_s = TOKEN_MARGIN_S + 1, TOKEN_MARGIN_S + 3  # the worker's view: 1 s and 3 s
    async with run.restarted_with(
        "simulator", SIMULATOR_TOKEN_EXPIRES_IN=str(access_s), SIMULATOR_REFRESH_EXPIRES_IN=str(refresh_s)
    ):
        chunks = 24
        run.new_session(chunks, chunk_size=MiB)
        await run.start(latency_ms=400)  # ~ 3 s of transfers
        await run.completes()  # before the simulator, restarted with its defaults, forgets the session
        stats = run.simulator.stats("cadip")

    assert stats["by_route"].get(TOKEN_ROUTE, 0) >= 3, stats["by_route"]  # renewed along the way
    assert downloads_refused(stats) == 0  # renewed before the station refused anything
    assert stats["downloads"] == chunks


async def test_a_station_forgetting_its_tokens_mid_transfer_is_logged_into_again(run: StagingRun) -> None:
    run.session = SAMPLE_SESSION
    await run.start(latency_ms=500)
    before = await run.transferred(3)
    assert before.assets_done < before.assets_total
    await run.restart("simulator")  # a new process: no token it issued before is known
    run.simulator.faults(cadip={"latency_ms": 500})
    await run.completes()

    stats = run.simulator.stats("cadip")  # since the restart
    assert downloads_refused(stats) >= 1, stats  # the worker's token was refused…
    assert stats["by_route"].get(TOKEN_ROUTE, 0) >= 1  # …and it got a new one itself
