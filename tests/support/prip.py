"""PRIP products generated on the simulator (in a window of their own, or with publication dates for schedules), and
the requests that stage them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from rs_ondemand.models.schedules import ScheduledStagingInput
from rs_ondemand.models.staging import PripStagingInput
from rs_ondemand.models.timewindow import to_utc
from tests.support.stack import Simulator

OWNER = "alice"
EPOCH = datetime(2031, 1, 1, tzinfo=UTC)  # generated products live after the seeded catalogue
WINDOW = (EPOCH + timedelta(days=5), EPOCH + timedelta(days=6))
"""A window every product of `add_prip_products` is valid over."""
VALIDITY_S = 60
"""Validity of the products of `add_published_products`; the simulator publishes each 1 h + 20..180 min (drawn per
product) after the end of its validity: [EARLIEST, LATEST] after its start."""
EARLIEST, LATEST = timedelta(seconds=VALIDITY_S, hours=1, minutes=20), timedelta(seconds=VALIDITY_S, hours=4)


def prip_request(
    product_type: str, collection: str, start: datetime, end: datetime, **options: Any
) -> PripStagingInput:
    return PripStagingInput.for_window(
        OWNER, product_type, collection, start, end, prip_collection="prip", options=options
    )


def add_prip_products(simulator: Simulator, count: int, size: int = 1000, **spec: Any) -> str:
    """`count` products of a fresh product type, all valid over [EPOCH + 5 days, EPOCH + 6 days]."""
    product_type = f"T{uuid.uuid4().hex[:8].upper()}"
    simulator.add_products(
        "prip",
        product_type,
        count,
        start=EPOCH.isoformat(),
        step_seconds=60,
        validity_seconds=10 * 86400,
        size=size,
        **spec,
    )
    return product_type


def scheduled_request(product_type: str, collection: str, every_s: int, overlap_s: int) -> ScheduledStagingInput:
    return ScheduledStagingInput.model_validate(
        {
            "station": "prip",
            "env": {"owner_id": OWNER},
            "product_type": product_type,
            "catalog_collection_identifier": collection,
            "prip_collection": "prip",
            "window_seconds": every_s,
            "overlap_seconds": overlap_s,
        }
    )


def add_published_products(
    simulator: Simulator, product_type: str, start: datetime, count: int, step_s: float = 60
) -> dict[str, datetime]:
    """Generated PRIP products (validity starts `step_s` apart from `start`) → their publication times."""
    added = simulator.add_products(
        "prip",
        product_type,
        count,
        start=start.isoformat(),
        step_seconds=step_s,
        validity_seconds=VALIDITY_S,
        size=1000,
    )
    return {p["Name"].removesuffix(".zip"): to_utc(p["PublicationDate"]) for p in added["products"]}
