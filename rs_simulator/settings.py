"""Station simulator settings, read from `SIMULATOR_*` environment variables."""

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rs_simulator.profiles import DEFAULT_STATIONS, StationProfile, check_station_names

KIB = 1024


class SimulatorSettings(BaseSettings):
    """Everything the simulator needs; two processes with equal settings serve identical data."""

    model_config = SettingsConfigDict(env_prefix="SIMULATOR_", extra="ignore", use_attribute_docstrings=True)

    seed: int = 42
    """Root of every pseudo-random choice: catalogue entities, ids, dates and file bytes."""

    client_id: str = "client_id"
    """OAuth2 client id accepted by every station's `/oauth2/token`."""

    client_secret: str = "client_secret"
    """OAuth2 client secret accepted by every station's `/oauth2/token`."""

    username: str = "test"
    """Resource-owner user name (password grant)."""

    password: str = "test"
    """Resource-owner password (password grant)."""

    token_expires_in: int = Field(default=1200, ge=1)
    """Lifetime of an access token, in seconds (the RS mocks use 1200)."""

    refresh_expires_in: int = Field(default=3600, ge=1)
    """Lifetime of a refresh token, in seconds (the RS mocks use 3600)."""

    chunk_size: int = Field(default=256 * KIB, ge=1)
    """Bytes of a full CADIP chunk file; the real session's sizes are scaled down to it."""

    product_size: int = Field(default=128 * KIB, ge=1)
    """Bytes of a seeded PRIP product."""

    redirect_downloads: bool = False
    """When true, `$value` answers 307 to `/{station}/Redirect/Files(<Id>)/$value` (RS CADIP mock style)."""

    page_size_max: int = Field(default=1000, ge=1)
    """Upper bound of the STAC `limit` parameter."""

    test_controls: bool = True
    """Serve the test controls `/_faults`, `/_stats` and `/_catalogue` (unauthenticated); `false` in shared
    deployments, where only `/health` stays."""

    stations: dict[str, StationProfile] = Field(default_factory=dict)
    """Extra named stations (JSON `{name: profile}`), or new behaviour for `cadip`, `auxip`, `prip`, which are
    always served: e.g. `{"ins": {"kind": "cadip", "stac": false, "checksums": false}}` (see `profiles.py`)."""

    @field_validator("stations")
    @classmethod
    def _station_names(cls, stations: dict[str, StationProfile]) -> dict[str, StationProfile]:
        return check_station_names(stations)

    def station_profiles(self) -> dict[str, StationProfile]:
        """Every station served, by name (its URL prefix)."""
        return DEFAULT_STATIONS | self.stations
