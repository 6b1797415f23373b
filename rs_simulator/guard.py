"""Per-station request accounting and fault injection, run before every route of a station."""

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import Request

from rs_simulator.errors import SimulatorError
from rs_simulator.state import SimulatorState


def station_guard(state: SimulatorState, station: str, prefix: str) -> Callable[[Request], Awaitable[None]]:
    """A router dependency: count the request, then apply latency, outage and error-rate faults.

    Args:
        prefix: where the router is mounted; route paths are relative to it, counters show full paths.
    """

    async def guard(request: Request) -> None:
        counters = state.stats[station]
        route = request.scope.get("route")
        path = f"{prefix}{route.path}" if route is not None else request.url.path
        counters.request(f"{request.method} {path}")
        faults = state.faults.spec(station)
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.outage:
            counters.fault("outage")
            raise SimulatorError(503, f"{station} is unavailable (injected outage)", {"Retry-After": "1"})
        status = state.faults.draw_error(station)
        if status is not None:
            counters.fault("error")
            raise SimulatorError(status, f"injected error {status}")

    return guard
