"""Named stations of one simulator and the ICD variety each shows (the quirks real stations have)."""

import re

from pydantic import BaseModel, ConfigDict, Field

from rs_simulator.stations import StationName

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
RESERVED = frozenset({"health", "docs", "redoc", "openapi.json"})


class StationProfile(BaseModel):
    """How one named station behaves. The defaults are the well-behaved station of the ESA interfaces plus an
    rs-server-like STAC facade; every other value is a variety the interface documents allow."""

    model_config = ConfigDict(extra="forbid")

    kind: StationName
    stac: bool = True
    """Serve the STAC facade under `/{name}/stac`; false: an ICD-only station (OData alone)."""
    expand_files: bool = True
    """Honour `$expand=Files` on Sessions; false: the expansion is silently not done (as the RS CADIP mock with
    `CADIP_SESSION_EXPAND=false`), so clients must list `Files` by `SessionId`."""
    checksums: bool = True
    """Give `Checksum` on Files and Products; false: none (the real CADIP sample has none)."""
    sizes_as_strings: bool = False
    """`Size` / `ContentLength` as numeric strings (`"314571600"`) instead of numbers."""
    page_size: int | None = Field(default=None, ge=1)
    """Server-driven paging: at most this many entities per response, the rest behind `@odata.nextLink`."""
    redirect_host: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+$")
    """`$value` answers 307 to this host name (same port and scheme), which needs the bearer token too."""
    token_expires_in: int | None = Field(default=None, ge=1)
    """This station's access-token lifetime in seconds (default: the simulator's)."""
    api_key: str | None = None
    """The STAC facade wants this key in `x-api-key` (as an RS-Server facade does); unset: it is open."""


DEFAULT_STATIONS = {str(kind): StationProfile(kind=kind) for kind in StationName}
"""Always served: `/cadip`, `/auxip`, `/prip`, with their STAC facades (the names docs/interface.md#simulator
fixes)."""


def check_station_names(stations: dict[str, StationProfile]) -> dict[str, StationProfile]:
    """`stations` if every name can be a URL prefix of its own; ValueError naming the first that cannot."""
    for name in stations:
        if not NAME.match(name) or name in RESERVED:
            raise ValueError(f"station name {name!r} must match {NAME.pattern} and not be one of {sorted(RESERVED)}")
    return stations
