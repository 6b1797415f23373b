"""CQL2-JSON filters the workflows send to stations (pure functions, usable in workflow code)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rs_ondemand.models.timewindow import strftime_millis


def valcover_filter(start: datetime, end: datetime, product_type: str) -> dict[str, Any]:
    """Products of `product_type` whose validity covers [start, end], exactly as RS `create_valcover_filter`
    (docs/rs-compatibility.md#valcover-filter)."""
    return {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "product:type"}, product_type]},
            {
                "op": "t_contains",
                "args": [
                    {"interval": [{"property": "start_datetime"}, {"property": "end_datetime"}]},
                    {"interval": [strftime_millis(start), strftime_millis(end)]},
                ],
            },
        ],
    }
