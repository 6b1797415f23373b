"""The station registry: which stations exist, how to reach them, and which collections requests may name.

Read from the YAML file named by `RS_STATIONS_FILE`, or, without it, built from the `CADIP_*`, `AUXIP_*` and
`PRIP_*` variables (one STAC-facade station per kind, named after its kind). Secret values stay in the
environment: the file refers to them as `${VAR}`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from rs_ondemand.errors import ConfigurationError, InvalidInputError

Kind = Literal["cadip", "auxip", "prip"]
Api = Literal["odata", "stac"]
KINDS: tuple[Kind, ...] = ("cadip", "auxip", "prip")
DEFAULT_MAX_CONCURRENT_DOWNLOADS = 4
"""Downloads from one station at once, when its registry entry (or `<KIND>_MAX_CONCURRENT_DOWNLOADS`) says nothing."""
DEFAULT_STATION_TIMEOUT_S = 60.0
STATION_NAME = r"^[a-z][a-z0-9_-]{0,39}$"
"""Station names become task-queue suffixes (`<queue>-downloads-<name>`) and metric labels."""
COLLECTION_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$"
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
"""`${VAR}`, or `${VAR:-default}` (the default when VAR is unset), as in a shell."""


class StationConfig(BaseModel):
    """One station: its kind, which API we speak to it, where it is and how we log in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=STATION_NAME)
    kind: Kind
    api: Api
    url: str = Field(pattern=r"^https?://")
    """`odata`: the OData service root (`…/Sessions`, `…/Products` below it). `stac`: the STAC API root."""
    odata_url: str | None = Field(None, pattern=r"^https?://")
    """Root of the download URLs (`…/Files(<Id>)/$value`), the only place the bearer token goes besides
    `redirect_hosts`. Default: `url` for an `odata` station; a `stac` station without it downloads nothing."""
    token_url: str | None = Field(None, pattern=r"^https?://")
    """OAuth2 token endpoint (password grant, posted as a form)."""
    client_id: str | None = None
    client_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    """Sent as `x-api-key` on every request to the station (an RS-Server facade's API key)."""
    max_concurrent_downloads: int = Field(DEFAULT_MAX_CONCURRENT_DOWNLOADS, ge=1)
    """Downloads from this station at once, across every running request (slots of its download queue)."""
    max_requests_per_minute: int | None = Field(None, ge=1)
    """Optional cap on downloads started per minute (the Temporal server's rate limit on its download queue)."""
    redirect_hosts: tuple[str, ...] = ()
    """Hosts (`name` or `name:port`) a download may be redirected to that get the bearer token too; a
    redirect anywhere else is followed without it."""
    timeout_s: float = Field(DEFAULT_STATION_TIMEOUT_S, gt=0)
    """Connect/read timeout of one HTTP exchange with the station (not of a whole download)."""

    @model_validator(mode="after")
    def _complete(self) -> Self:
        credentials = [self.token_url, self.username, self.password]
        if any(credentials) and not all(credentials):
            raise ValueError("token_url, username and password go together (OAuth2 password grant)")
        if self.api == "odata" and not self.token_url and not self.api_key:
            raise ValueError("an odata station needs token_url, username and password (or an api_key)")
        return self

    @property
    def download_root(self) -> str | None:
        """Prefix of every URL this station's credentials may be sent to (ends with `/`)."""
        root = self.odata_url or (self.url if self.api == "odata" else None)
        return root.rstrip("/") + "/" if root else None

    @property
    def auth(self) -> str:
        """How we authenticate (for listings; never the secret itself)."""
        methods = (["oauth2"] if self.token_url else []) + (["api-key"] if self.api_key else [])
        return "+".join(methods) or "none"

    def secrets(self) -> list[str]:
        """The secret values of this station (to check that none leaks)."""
        return [s.get_secret_value() for s in (self.client_secret, self.password, self.api_key) if s]


class CollectionConfig(BaseModel):
    """A name requests use (`cadip_collection_identifier`, `prip_collection`, `auxip_collection`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    station: str
    satellites: tuple[str, ...] | None = None
    """Only these satellites' sessions/products (`S1A`, `S2B`…); all when omitted."""
    stac_collection: str | None = Field(None, pattern=COLLECTION_NAME)
    """For a `stac` station: the facade's collection id (default: this collection's own name)."""

    @model_validator(mode="after")
    def _satellites(self) -> Self:
        for satellite in self.satellites or ():
            if not re.fullmatch(r"S\d[A-Z]", satellite):
                raise ValueError(f"satellite {satellite!r} is not a code like S1A")
        return self


class Target(BaseModel):
    """Where a request's station collection leads: a station and what to ask it."""

    station: StationConfig
    collection: str | None
    """The registry collection named by the request (None: every product of the station)."""
    stac_collection: str | None
    """The collection id to search on a STAC facade (None: all)."""
    satellites: tuple[str, ...] | None = None


class StationRegistry(BaseModel):
    """Every configured station and collection. `open_collections`: built from the `CADIP_*` shorthand, whose
    collections are whatever each station's STAC facade has (the facade says which are unknown)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stations: dict[str, StationConfig]
    collections: dict[str, CollectionConfig] = Field(default_factory=dict)
    open_collections: bool = False
    source: str = "the CADIP_*, AUXIP_* and PRIP_* variables"

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for name, collection in self.collections.items():
            if not re.fullmatch(COLLECTION_NAME, name):
                raise ValueError(f"collections.{name}: not a usable collection name")
            if collection.station not in self.stations:
                raise ValueError(f"collections.{name}: unknown station {collection.station!r}")
        roots: dict[str, str] = {}
        for station in self.stations.values():
            if (
                station.download_root
                and (other := roots.setdefault(station.download_root, station.name)) != station.name
            ):
                raise ValueError(f"stations {other} and {station.name} share the download root {station.download_root}")
        return self

    def of_kind(self, kind: Kind) -> list[StationConfig]:
        return [s for s in self.stations.values() if s.kind == kind]

    def resolve(self, kind: Kind, collection: str | None) -> Target:
        """The station and query behind a request's station collection.

        Raises:
            InvalidInputError: an unknown collection, one of another kind, or no collection where several
                stations of the kind could answer.
        """
        label = kind.upper()
        if collection is not None and not self.open_collections:
            entry = self.collections.get(collection)
            if entry is None or self.stations[entry.station].kind != kind:
                known = sorted(n for n, c in self.collections.items() if self.stations[c.station].kind == kind)
                raise InvalidInputError(
                    f"unknown {label} collection {collection!r} in {self.source} (known: {', '.join(known) or 'none'})"
                )
            return Target(
                station=self.stations[entry.station],
                collection=collection,
                stac_collection=entry.stac_collection or collection,
                satellites=entry.satellites,
            )
        candidates = self.of_kind(kind)
        if len(candidates) != 1:
            what = "no" if not candidates else f"{len(candidates)}"
            raise InvalidInputError(
                f"{what} {label} stations in {self.source}: "
                + ("name a collection of the one to search" if candidates else f"configure one ({kind.upper()}_URL)")
            )
        return Target(station=candidates[0], collection=collection, stac_collection=collection)

    def for_download(self, url: str) -> StationConfig | None:
        """The station whose download root `url` lies below (the one whose credentials it may receive)."""
        return next((s for s in self.stations.values() if s.download_root and url.startswith(s.download_root)), None)

    def secrets(self) -> list[str]:
        return [secret for station in self.stations.values() for secret in station.secrets()]


def _one_line(err: pydantic.ValidationError, source: str) -> str:
    """Validation errors without the offending values (a value may be a secret), on one line."""
    problems = [f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in err.errors()]
    return f"{source}: " + "; ".join(problems)


def _expand(value: Any, env: Mapping[str, str], where: str) -> Any:
    """`value` with every `${VAR}` inside its strings replaced from `env`."""
    if isinstance(value, dict):
        return {k: _expand(v, env, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):

        def variable(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigurationError(f"{where}: ${{{name}}} is not set in the environment")

        return _REFERENCE.sub(variable, value)
    return value


def load_stations_file(path: Path, env: Mapping[str, str] | None = None) -> StationRegistry:
    """Read, expand and validate a stations file.

    Raises:
        ConfigurationError: one line naming the file and every problem (never a secret's value).
    """
    source = f"stations file {path}"
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigurationError(f"{source}: cannot be read ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigurationError(f"{source}: not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{source}: must be a mapping with `stations` and `collections`")
    unknown = sorted(set(raw) - {"stations", "collections"})
    if unknown:
        raise ConfigurationError(f"{source}: unknown keys {', '.join(map(str, unknown))} (stations, collections)")
    stations = raw.get("stations")
    if not isinstance(stations, dict) or not stations:
        raise ConfigurationError(f"{source}: `stations` must map station names to their settings")
    try:
        expanded = _expand(raw, os.environ if env is None else env, "")
    except ConfigurationError as err:
        raise ConfigurationError(f"{source}: {err}") from None
    try:
        named = {
            name: {**spec, "name": name} if isinstance(spec, dict) else spec
            for name, spec in expanded["stations"].items()
        }
        return StationRegistry(stations=named, collections=expanded.get("collections") or {}, source=source)
    except pydantic.ValidationError as err:
        raise ConfigurationError(_one_line(err, source)) from None
