"""Opening a STAC API with pystac-client so that its HTTP session is closed after use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pystac_client
from pystac_client.stac_api_io import StacApiIO


@contextmanager
def open_stac_api(url: str, timeout_s: float, headers: dict[str, str] | None = None) -> Iterator[pystac_client.Client]:
    """A pystac-client `Client` on `url` (sending `headers`, e.g. credentials, with every request); its
    requests session (and sockets) is closed on exit."""
    stac_io = StacApiIO(timeout=timeout_s, headers=headers)
    try:
        yield pystac_client.Client.open(url, stac_io=stac_io)
    finally:
        stac_io.session.close()
