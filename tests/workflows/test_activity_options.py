"""The activity presets bound how long a request waits after its worker is killed mid-activity: an activity that
does not heartbeat is retried only once its start-to-close timeout has passed (the chaos soak saw a request wait
10 minutes on its cleanup after a worker crash)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rs_ondemand.workflows import _options

LONGEST_SILENT_ATTEMPT = timedelta(minutes=5)
"""A crashed worker's activity without heartbeats may stay unnoticed this long at most (a station search that
pages through every result)."""


def presets() -> dict[str, dict[str, Any]]:
    return {
        name: value
        for name, value in vars(_options).items()
        if name.isupper() and isinstance(value, dict) and "start_to_close_timeout" in value
    }


def test_an_activity_without_heartbeat_is_retried_soon_after_its_worker_died() -> None:
    found = presets()
    assert {"SEARCH", "CATALOG", "PLAN", "TRANSFER", "PROCESSOR", "CLEANUP"} <= set(found)
    silent = {name: p["start_to_close_timeout"] for name, p in found.items() if "heartbeat_timeout" not in p}
    assert "CLEANUP" in silent and "TRANSFER" not in silent
    assert {name: timeout for name, timeout in silent.items() if timeout > LONGEST_SILENT_ATTEMPT} == {}
    # Cleanup deletes what a request wrote: seconds of work, retried for long (30 attempts), each attempt short.
    assert found["CLEANUP"]["start_to_close_timeout"] <= timedelta(minutes=2)
    assert found["CLEANUP"]["retry_policy"].maximum_attempts >= 30
