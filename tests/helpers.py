"""Helpers shared by test modules (not fixtures): the simulator's test controls."""

from __future__ import annotations

from typing import Any

import httpx


class Simulator:
    """The station simulator's test controls (interface.md: /_faults, /_stats)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def faults(self, **per_station: dict[str, Any]) -> None:
        self.http.put("/_faults", json={"stations": per_station}).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/_faults").raise_for_status()

    def stats(self, station: str) -> dict[str, Any]:
        response = self.http.get("/_stats")
        response.raise_for_status()
        return response.json()[station]

    def close(self) -> None:
        self.http.close()
