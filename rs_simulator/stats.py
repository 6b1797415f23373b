"""Per-station request and download counters served by `/_stats`."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StationStats:
    """Counters of one station; only touched from the event loop, so plain ints suffice."""

    requests: int = 0
    downloads: int = 0
    bytes_served: int = 0
    downloads_in_flight: int = 0
    max_downloads_in_flight: int = 0
    errors_injected: int = 0
    faults_injected: Counter[str] = field(default_factory=Counter)
    by_route: Counter[str] = field(default_factory=Counter)

    def request(self, route: str) -> None:
        self.requests += 1
        self.by_route[route] += 1

    def fault(self, kind: str) -> None:
        """Count an injected fault (error, outage, reset, truncate, corrupt) in `errors_injected`."""
        self.errors_injected += 1
        self.faults_injected[kind] += 1

    def download_started(self) -> None:
        self.downloads += 1
        self.downloads_in_flight += 1
        self.max_downloads_in_flight = max(self.max_downloads_in_flight, self.downloads_in_flight)

    def download_finished(self) -> None:
        self.downloads_in_flight -= 1

    def reset(self) -> None:
        """Zero the counters; downloads still running stay counted in flight so the gauge never goes negative."""
        in_flight = self.downloads_in_flight
        # In place: running downloads hold a reference to this object and decrement it when they end.
        vars(self).update(vars(StationStats(downloads_in_flight=in_flight, max_downloads_in_flight=in_flight)))

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "downloads": self.downloads,
            "bytes_served": self.bytes_served,
            "downloads_in_flight": self.downloads_in_flight,
            "max_downloads_in_flight": self.max_downloads_in_flight,
            "errors_injected": self.errors_injected,
            "faults_injected": dict(self.faults_injected),
            "by_route": dict(self.by_route),
        }


class Stats:
    """The counters of every station, by name."""

    def __init__(self, names: list[str]) -> None:
        self.stations = {name: StationStats() for name in names}

    def __getitem__(self, station: str) -> StationStats:
        return self.stations[station]

    def reset(self) -> None:
        for counters in self.stations.values():
            counters.reset()

    def snapshot(self) -> dict[str, Any]:
        return {str(station): counters.snapshot() for station, counters in self.stations.items()}
