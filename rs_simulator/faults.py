"""Fault injection state set through `/_faults`: outages, error rates, latency and broken downloads."""

import random
from enum import StrEnum, unique
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rs_simulator.errors import SimulatorError

ERROR_STATUSES = (500, 502, 503)


class FaultSpec(BaseModel):
    """Faults of one station (or, at the top level of a request, of every station)."""

    model_config = ConfigDict(extra="forbid")

    outage: bool = False
    """503 on every OData, token and STAC route."""
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Fraction of requests answered 500, 502 or 503."""
    reset_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Fraction of `$value` downloads whose connection breaks mid-body."""
    truncate_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Fraction of `$value` downloads ending before Content-Length bytes."""
    corrupt_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Fraction of `$value` downloads with a few flipped bytes (same length, wrong MD5)."""
    latency_ms: int = Field(default=0, ge=0, le=600_000)
    """Delay before answering any request of the station."""


class StationFaults(FaultSpec):
    """Per-station overrides: only the keys given replace the global ones."""


class FaultRequest(FaultSpec):
    """Body of `PUT /_faults`: global keys, and per-station overrides under `stations`."""

    stations: dict[str, StationFaults] = Field(default_factory=dict)
    """By station name (`cadip`, or a named station of `SIMULATOR_STATIONS`)."""


@unique
class DownloadFault(StrEnum):
    NONE = "none"
    RESET = "reset"
    TRUNCATE = "truncate"
    CORRUPT = "corrupt"


class FaultInjector:
    """Current faults and one seeded generator per station, so a test run replays the same decisions."""

    def __init__(self, seed: int, names: list[str]) -> None:
        self._seed = seed
        self._names = names
        self.configure(FaultRequest())

    def configure(self, request: FaultRequest) -> None:
        """Replace the whole fault state (PUT semantics) and re-seed the generators.

        Raises:
            SimulatorError: 422 naming a station this simulator does not serve (nothing is changed).
        """
        unknown = sorted(set(request.stations) - set(self._names))
        if unknown:
            raise SimulatorError(422, f"no such station: {', '.join(unknown)} (stations: {', '.join(self._names)})")
        self._request = request
        base = request.model_dump(exclude={"stations"})
        self._effective = {
            station: FaultSpec(
                **(base | (o.model_dump(exclude_unset=True) if (o := request.stations.get(station)) else {}))
            )
            for station in self._names
        }
        self._rngs = {station: random.Random(f"{self._seed}:faults:{station}") for station in self._names}

    def clear(self) -> None:
        self.configure(FaultRequest())

    def state(self) -> dict[str, Any]:
        """The request as set (`GET /_faults`) plus what applies to each station under `effective`."""
        request = self._request.model_dump(exclude={"stations"})
        request["stations"] = {str(s): o.model_dump(exclude_unset=True) for s, o in self._request.stations.items()}
        request["effective"] = {str(s): spec.model_dump() for s, spec in self._effective.items()}
        return request

    def spec(self, station: str) -> FaultSpec:
        return self._effective[station]

    def rng(self, station: str) -> random.Random:
        return self._rngs[station]

    def draw_error(self, station: str) -> int | None:
        """An HTTP status to answer instead of the real response, or None."""
        spec = self._effective[station]
        if spec.error_rate and self._rngs[station].random() < spec.error_rate:
            return self._rngs[station].choice(ERROR_STATUSES)
        return None

    def draw_download_fault(self, station: str) -> DownloadFault:
        """At most one fault per download: the rates partition one uniform draw (reset, truncate, corrupt)."""
        spec = self._effective[station]
        if not (spec.reset_rate or spec.truncate_rate or spec.corrupt_rate):
            return DownloadFault.NONE
        draw = self._rngs[station].random()
        for fault, rate in (
            (DownloadFault.RESET, spec.reset_rate),
            (DownloadFault.TRUNCATE, spec.truncate_rate),
            (DownloadFault.CORRUPT, spec.corrupt_rate),
        ):
            if draw < rate:
                return fault
            draw -= rate
        return DownloadFault.NONE
