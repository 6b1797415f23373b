"""Configuration from environment variables (and the embedded stack's `.stack/env`), one class per concern."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from dotenv import dotenv_values
from pydantic import AliasChoices, BaseModel, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rs_ondemand.models.processor_run import (
    AddressDaskCluster,
    GatewayDaskCluster,
    LocalDaskCluster,
    parse_dask_cluster,
)
from rs_ondemand.stations.registry import (
    DEFAULT_MAX_CONCURRENT_DOWNLOADS,
    DEFAULT_STATION_TIMEOUT_S,
    StationConfig,
    StationRegistry,
    load_stations_file,
)

# The embedded stack (`stack/services.py`) creates and exports these, so a worker configured without them finds it.
DEFAULT_TASK_QUEUE = "rs-ondemand"
DEFAULT_NAMESPACE = "default"
DEFAULT_REGION = "us-east-1"
DEFAULT_BUCKET = "rs-cluster-catalog"
DEFAULT_WORK_BUCKET = "rs-ondemand-work"


def default_env_file() -> Path | None:
    """The embedded stack's env file, if there is one: `$RS_STACK_DIR/env` or `./.stack/env`."""
    path = Path(os.environ.get("RS_STACK_DIR", ".stack")) / "env"
    return path if path.is_file() else None


class _Settings(BaseSettings):
    # Real environment variables win over the env file; unknown keys in the file belong to other concerns.
    # An empty variable counts as unset: Compose passes `${VAR:-}` as "" for every setting .env leaves out.
    model_config = SettingsConfigDict(extra="ignore", env_file_encoding="utf-8", env_ignore_empty=True)


class TemporalSettings(_Settings):
    """Where the Temporal frontend is and how to authenticate to it. The names are Temporal's own environment
    configuration (the `temporal` CLI reads the same ones), so one set of variables serves both."""

    model_config = SettingsConfigDict(env_prefix="TEMPORAL_")

    address: str = "127.0.0.1:7233"
    """Temporal frontend, `host:port` (gRPC); Temporal Cloud: `<namespace>.<account>.tmprl.cloud:7233`, or the
    regional endpoint for API keys."""
    namespace: str = DEFAULT_NAMESPACE
    """Namespace of the workflows; it must have the `Rs*` search attributes."""
    ui_url: str | None = None
    """Base URL of the Temporal Web UI, used to print links to workflows."""
    api_key: SecretStr | None = Field(None, json_schema_extra={"unset_means_off": True})
    """API key (Temporal Cloud), sent as a bearer token on every call; it turns TLS on."""
    tls: bool | None = Field(None, json_schema_extra={"unset_means_off": True})
    """`true`: TLS, trusting the system's CAs unless a server CA is given; `false`: plaintext (refused together
    with any TLS setting or an API key); unset: TLS as soon as one of the TLS settings or an API key is set."""
    tls_server_ca_cert_path: Path | None = Field(None, json_schema_extra={"unset_means_off": True})
    """PEM file of the CA that signed the server's certificate (a private CA; Temporal Cloud needs none)."""
    tls_server_ca_cert_data: str | None = Field(None, json_schema_extra={"unset_means_off": True})
    """The same CA as PEM text, for platforms that pass certificates in variables."""
    tls_server_name: str | None = Field(None, json_schema_extra={"unset_means_off": True})
    """Name the server's certificate must carry, when it differs from the host of the address."""
    tls_client_cert_path: Path | None = Field(None, json_schema_extra={"unset_means_off": True})
    """PEM file of the client certificate (mTLS), with its chain; needs the key too."""
    tls_client_cert_data: str | None = Field(None, json_schema_extra={"unset_means_off": True})
    """The client certificate as PEM text."""
    tls_client_key_path: Path | None = Field(None, json_schema_extra={"unset_means_off": True})
    """PEM file of the client certificate's private key (mTLS)."""
    tls_client_key_data: SecretStr | None = Field(None, json_schema_extra={"unset_means_off": True})
    """The client private key as PEM text."""


class WorkerSettings(_Settings):
    """How a worker polls and how much it runs at once."""

    model_config = SettingsConfigDict(env_prefix="RS_")

    task_queue: str = DEFAULT_TASK_QUEUE
    """Task queue every worker polls; each station's downloads run on `<queue>-downloads-<station>`."""
    max_concurrent_activities: int = 32
    """Activity slots per worker; transfers are I/O bound, so this is well above the core count."""
    health_port: int | None = Field(None, ge=1, le=65535, json_schema_extra={"unset_means_off": True})
    """Port of the worker's health endpoint (`/livez`: started and every poller alive; `/readyz`: also connected
    to Temporal and polling); unset: no endpoint."""
    health_host: str = "127.0.0.1"
    """Address the health endpoint listens on: `0.0.0.0` in a Kubernetes pod, whose probes come from outside."""
    stations_file: Path | None = Field(None, json_schema_extra={"unset_means_off": True})
    """The station registry (YAML, `docs/stations.md`); unset or empty: the `CADIP_*`, `AUXIP_*` and `PRIP_*`
    variables describe one station per kind."""

    @field_validator("stations_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value


class S3Settings(_Settings):
    """The object store that receives staged data (any S3: SeaweedFS in Compose, AWS; moto on the embedded stack)."""

    model_config = SettingsConfigDict(env_prefix="")

    s3_endpoint_url: str | None = None
    """S3 API endpoint (SeaweedFS, MinIO, ...); unset: AWS S3."""
    aws_access_key_id: SecretStr | None = None
    """Access key of the workers' S3 account (EOPF gets it too, by name)."""
    aws_secret_access_key: SecretStr | None = None
    """Secret key of the workers' S3 account."""
    aws_default_region: str = DEFAULT_REGION
    """Region of the buckets."""
    rs_bucket: str = DEFAULT_BUCKET
    """Bucket of staged products: s3://<bucket>/<owner>/<collection>/<item>/<asset>."""
    rs_work_bucket: str = DEFAULT_WORK_BUCKET
    """Bucket of request manifests (search results kept out of workflow history)."""
    rs_s3_part_size: int = Field(16 * 1024 * 1024, ge=5 * 1024 * 1024)
    """Multipart part size: a transfer holds about two parts in memory and a crash re-reads at most one; each part
    costs one checkpoint write, so larger parts are cheaper (16 MiB: objects up to 160 GB in 10,000 parts)."""


class TransferSettings(_Settings):
    """How assets are transferred: small files many to an activity, the others each in its own (resumable)."""

    model_config = SettingsConfigDict(env_prefix="RS_")

    small_file_bytes: int = Field(16 * 1024 * 1024, ge=0)
    """Assets the station announces smaller than this are transferred in batches (each file streamed, verified and
    stored in one request, one download in flight per batch); larger ones, or of unknown size, one per activity,
    resumable part by part. 0: no batches. Stations with a requests-per-minute cap get no batches either (the
    cap counts activities)."""
    batch_max_files: int = Field(100, ge=1)
    """Files of one batch at most."""
    batch_max_bytes: int = Field(64 * 1024 * 1024, ge=1)
    """Bytes of one batch at most (a retried batch checks its finished files in S3 and transfers only the rest)."""


class CatalogSettings(_Settings):
    """The STAC catalog (stac-fastapi-pgstac with the transaction extension)."""

    model_config = SettingsConfigDict(env_prefix="CATALOG_")

    url: str = "http://127.0.0.1:8082"
    """Root of the STAC API (stac-fastapi-pgstac, transactions enabled; or RS-Server's `…/catalog`)."""
    timeout_s: float = 60.0
    """Timeout of one catalog HTTP exchange, in seconds."""
    api_key: SecretStr | None = Field(None, json_schema_extra={"unset_means_off": True})
    """API key sent as `x-api-key` with every catalog request (RS-Server's API-key authentication)."""
    token_url: str | None = Field(None, json_schema_extra={"unset_means_off": True})
    """OAuth2 token endpoint (password grant) whose bearer token goes with every catalog request."""
    client_id: str | None = Field(None, json_schema_extra={"unset_means_off": True})
    """OAuth2 client id of the catalog login."""
    client_secret: SecretStr | None = Field(None, json_schema_extra={"unset_means_off": True})
    """OAuth2 client secret of the catalog login."""
    username: str | None = Field(None, json_schema_extra={"unset_means_off": True})
    """OAuth2 user of the catalog login."""
    password: SecretStr | None = Field(None, json_schema_extra={"unset_means_off": True})
    """OAuth2 password of the catalog login."""
    naming: Literal["plain", "rs-server"] = "plain"
    """`rs-server`: collections are addressed as `<owner>:<collection>` in paths and `<owner>_<collection>` in
    searches, created with their `owner` (RS-Server's catalog); `plain`: collection ids as given."""


class StationSettings(_Settings):
    """One external station per kind, the shorthand used when `RS_STATIONS_FILE` is unset (with it, these
    variables only mean what the stations file refers to as `${VAR}`): its STAC facade, its OData download root
    and its OAuth2 credentials.

    Each station kind reads its own prefix (CADIP_, AUXIP_, PRIP_), so credentials never mix.
    """

    kind: ClassVar[str]

    url: str | None = None
    """STAC API root of the station (CADIP_URL, AUXIP_URL, PRIP_URL: see docs/interface.md#stations)."""
    odata_url: str | None = None
    """Root of the station's download URLs. Bearer tokens are only ever sent below it."""
    token_url: str | None = None
    """OAuth2 token endpoint of the station."""
    client_id: str | None = None
    """OAuth2 client id."""
    client_secret: SecretStr | None = None
    """OAuth2 client secret."""
    username: str | None = None
    """OAuth2 resource-owner user name."""
    password: SecretStr | None = None
    """OAuth2 resource-owner password."""
    timeout_s: float = DEFAULT_STATION_TIMEOUT_S
    """Connect/read timeout of one HTTP exchange with the station (not of a whole download)."""
    max_concurrent_downloads: int = Field(DEFAULT_MAX_CONCURRENT_DOWNLOADS, ge=1)
    """Downloads from this station at once, across every running request (the slots of its download queue)."""
    max_requests_per_minute: int | None = Field(None, ge=1, json_schema_extra={"unset_means_off": True})
    """Optional cap on downloads started per minute, enforced by the Temporal server on the download queue."""
    api_key: SecretStr | None = Field(None, json_schema_extra={"unset_means_off": True})
    """API key sent as `x-api-key` to the station (an RS-Server facade), searches and downloads."""

    def as_station(self) -> StationConfig | None:
        """This kind's one station of the shorthand registry (named after its kind); None without a URL."""
        if not self.url:
            return None
        fields = self.model_dump(exclude={"url"})
        return StationConfig(name=self.kind, kind=self.kind, api="stac", url=self.url, **fields)


class CadipSettings(StationSettings):
    model_config = SettingsConfigDict(env_prefix="CADIP_")
    kind: ClassVar[str] = "cadip"


class AuxipSettings(StationSettings):
    model_config = SettingsConfigDict(env_prefix="AUXIP_")
    kind: ClassVar[str] = "auxip"


class PripSettings(StationSettings):
    model_config = SettingsConfigDict(env_prefix="PRIP_")
    kind: ClassVar[str] = "prip"


class TelemetrySettings(_Settings):
    """OpenTelemetry tracing, with the standard OTEL_* variable names."""

    model_config = SettingsConfigDict(env_prefix="OTEL_")

    traces_exporter: Literal["none", "console", "otlp"] = "none"
    """Where the worker's and starter's spans go: nowhere, to stdout, or over OTLP/HTTP to
    `OTEL_EXPORTER_OTLP_ENDPOINT`."""
    exporter_otlp_endpoint: str | None = Field(None, json_schema_extra={"unset_means_off": True})
    """An OTLP/HTTP collector; setting it alone turns the `otlp` exporter on."""
    service_name: str = "rs-ondemand"
    """`service.name` of the worker's and starter's spans."""


REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EOPF = REPO_ROOT / ".venv-eopf" / "bin" / "eopf"
"""Where `scripts/setup-eopf` installs the EOPF environment (a checkout; set RS_EOPF_EXECUTABLE elsewhere)."""
DaskCluster = LocalDaskCluster | AddressDaskCluster | GatewayDaskCluster
DEFAULT_CLUSTERS: dict[str, DaskCluster] = {"local": LocalDaskCluster()}
"""Without configuration, only a LocalCluster inside the EOPF process (2 workers x 1 thread)."""


class ProcessorSettings(_Settings):
    """Where the EOPF environment is and which Dask clusters requests may name (RS_EOPF_* variables)."""

    model_config = SettingsConfigDict(env_prefix="RS_EOPF_", populate_by_name=True)

    executable: Path = DEFAULT_EOPF
    """The EOPF venv's `eopf` command."""
    dask_clusters: dict[str, DaskCluster] = Field(default_factory=lambda: dict(DEFAULT_CLUSTERS))
    """`{label: cluster}` as JSON: "local", a scheduler URL ("tcp://127.0.0.1:8786") or a mapping with
    `cluster_type` local/address/gateway. Only these labels run: a request never names a scheduler itself, as
    the S3 credentials travel to whatever cluster runs the job."""
    default_dask_cluster: str | None = Field(None, json_schema_extra={"unset_means_off": True})
    """A label of `dask_clusters` that runs the requests naming a label this worker does not know (RS sends
    labels of its own clusters); unset: such requests are refused."""
    max_concurrent_runs: int = Field(2, ge=1)
    """EOPF runs one worker process drives at once (their own queue, `<task queue>-processor`): each run is a
    driver process, plus a LocalCluster's workers for the `local` label."""
    warm_runner: bool = True
    """Each EOPF run is a fork of a runner process that has EOPF imported (started with the worker's first run,
    restarted if it dies): a run starts at once. false: each run starts a new `eopf` process, which first spends
    seconds importing EOPF."""
    kill_grace_s: float = 20.0
    """After SIGTERM, how long EOPF gets to close its Dask client and cluster before SIGKILL."""
    heartbeat_s: float = 2.0
    """How often the processor activity heartbeats EOPF's progress, in seconds."""
    output_tail_lines: int = 60
    """Lines of EOPF's output kept for the error of a failed run."""
    otlp_endpoint: str | None = Field(None, json_schema_extra={"unset_means_off": True})
    """OTLP/gRPC endpoint for EOPF's own spans (e.g. http://otel-collector:4317); unset: EOPF records none, but
    still joins the request's trace."""
    dask_gateway_password: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("RS_EOPF_DASK_GATEWAY_PASSWORD", "DASK_GATEWAY_PASSWORD"),
        json_schema_extra={"unset_means_off": True},
    )
    """Basic-auth password of the dask-gateway (only the EOPF process's environment receives it)."""
    jupyterhub_api_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("RS_EOPF_JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_TOKEN"),
        json_schema_extra={"unset_means_off": True},
    )
    """JupyterHub token for a dask-gateway behind JupyterHub (RS reads JUPYTERHUB_API_TOKEN too)."""

    @model_validator(mode="after")
    def _default_is_known(self) -> ProcessorSettings:
        if self.default_dask_cluster is not None and self.default_dask_cluster not in self.dask_clusters:
            known = ", ".join(sorted(self.dask_clusters))
            raise ValueError(f"RS_EOPF_DEFAULT_DASK_CLUSTER {self.default_dask_cluster!r} is not a label of {known}")
        return self

    @field_validator("dask_clusters", mode="before")
    @classmethod
    def _lenient_clusters(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {label: parse_dask_cluster(spec) for label, spec in value.items()}
        return value


class Settings(BaseModel):
    """Everything a worker or a starter needs, loaded once and passed down (never read in workflow code)."""

    temporal: TemporalSettings
    worker: WorkerSettings
    s3: S3Settings
    transfers: TransferSettings
    catalog: CatalogSettings
    cadip: CadipSettings
    auxip: AuxipSettings
    prip: PripSettings
    telemetry: TelemetrySettings
    processor: ProcessorSettings
    _env_file: Path | None = PrivateAttr(None)
    """The env file read under the environment (where `${VAR}` of the stations file are looked up too)."""
    _registry: StationRegistry | None = PrivateAttr(None)
    """A registry given in code (tests, benches: `with_station`), used instead of the configured one."""

    @property
    def stations(self) -> list[StationSettings]:
        """The `CADIP_*`, `AUXIP_*`, `PRIP_*` shorthand settings (see `station_registry()` for the stations)."""
        return [self.cadip, self.auxip, self.prip]

    def station_registry(self) -> StationRegistry:
        """The stations: `registry` if given, else `RS_STATIONS_FILE`'s, else the shorthand's.

        Raises:
            ConfigurationError: the stations file cannot be used (one line, no secret in it).
        """
        if self._registry is not None:
            return self._registry
        path = self.worker.stations_file
        if path is not None:
            from_file = dotenv_values(self._env_file) if self._env_file else {}
            env = {**{k: v for k, v in from_file.items() if v is not None}, **os.environ}
            return load_stations_file(path, env)
        shorthand = [s for s in (x.as_station() for x in self.stations) if s is not None]
        return StationRegistry(stations={s.name: s for s in shorthand}, open_collections=True)

    def with_registry(self, registry: StationRegistry) -> Settings:
        """A copy whose stations are `registry`'s, whatever the configuration says."""
        copy = self.model_copy()
        copy._registry = registry
        return copy

    def with_station(self, name: str, **changes: Any) -> Settings:
        """A copy whose station `name` has `changes` (e.g. `max_concurrent_downloads=2`)."""
        registry = self.station_registry()
        station = registry.stations[name].model_copy(update=changes)
        return self.with_registry(registry.model_copy(update={"stations": registry.stations | {name: station}}))

    @classmethod
    def load(cls, env_file: Path | None = None) -> Settings:
        """Read the environment, with `env_file` (default: the embedded stack's) underneath it."""
        env_file = env_file or default_env_file()
        parts = {name: field.annotation for name, field in cls.model_fields.items()}
        settings = cls(**{name: kind(_env_file=env_file) for name, kind in parts.items()})  # type: ignore[misc]
        settings._env_file = env_file
        return settings
