"""Contracts of the DPR processor side: Dask cluster choices, the EOPF payload's inputs, processor runs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# --- Dask clusters, chosen by the request's `dask_cluster_label` -------------------------------------------------


class LocalDaskCluster(BaseModel):
    """A `LocalCluster` started inside the EOPF process for the run (simplest; pays the worker start each run)."""

    model_config = ConfigDict(extra="forbid")

    cluster_type: Literal["local"] = "local"
    n_workers: int = Field(2, ge=1)
    threads_per_worker: int = Field(1, ge=1)
    memory_limit: str | None = None
    """Per worker, e.g. "2GiB"; None lets Dask share the machine's memory."""


class AddressDaskCluster(BaseModel):
    """An already running scheduler (`dask scheduler` + `dask worker`s with the EOPF venv), by address."""

    model_config = ConfigDict(extra="forbid")

    cluster_type: Literal["address"] = "address"
    address: str = Field(pattern=r"^(tcp|tls|inproc|ucx)://.+")


class GatewayAuth(BaseModel):
    """How EOPF authenticates to a dask-gateway; secrets are named by environment variable, never given."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["basic", "jupyterhub"] = "basic"
    username: str | None = None
    password_env: str = "DASK_GATEWAY_PASSWORD"
    """Environment variable of the worker holding the basic-auth password (set in the EOPF process only)."""
    api_token_env: str = "JUPYTERHUB_API_TOKEN"
    """Environment variable holding the JupyterHub API token (RS's `jupyter_token`)."""


class GatewayDaskCluster(BaseModel):
    """A dask-gateway cluster found by its `cluster_name` option, newest first, as rs-dpr-service does."""

    model_config = ConfigDict(extra="forbid")

    cluster_type: Literal["gateway"] = "gateway"
    address: str
    """The gateway's public URL, e.g. http://127.0.0.1:8001 (the proxy)."""
    cluster_name: str
    """Value of the clusters' `cluster_name` option, e.g. "dask-l0" (RS's cluster label)."""
    cluster_instance: str | None = None
    """An exact cluster name, which wins over the label (RS's `cluster_instance`)."""
    auth: GatewayAuth | None = None


DaskClusterSpec = Annotated[
    LocalDaskCluster | AddressDaskCluster | GatewayDaskCluster, Field(discriminator="cluster_type")
]


def parse_dask_cluster(
    value: str | dict[str, Any] | BaseModel,
) -> LocalDaskCluster | AddressDaskCluster | GatewayDaskCluster:
    """Lenient at the edge: "local", a scheduler URL such as "tcp://127.0.0.1:8786", or a full mapping."""
    if isinstance(value, LocalDaskCluster | AddressDaskCluster | GatewayDaskCluster):
        return value
    if isinstance(value, str):
        if value == "local":
            return LocalDaskCluster()
        return AddressDaskCluster(address=value)
    if isinstance(value, dict):
        kind = value.get("cluster_type", "local")
        models: dict[str, type[LocalDaskCluster | AddressDaskCluster | GatewayDaskCluster]] = {
            "local": LocalDaskCluster,
            "address": AddressDaskCluster,
            "gateway": GatewayDaskCluster,
        }
        if kind not in models:
            raise ValueError(f"unknown cluster_type {kind!r}: use local, address or gateway")
        return models[kind].model_validate(value)
    raise ValueError(f"cannot read a Dask cluster from {value!r}")


# --- The payload -------------------------------------------------------------------------------------------------


class S3StorageRef(BaseModel):
    """How EOPF reaches S3: the endpoint may be written, the credentials only by the name of their variable.

    EOPF 3.0 resolves `${VAR}` anywhere in a payload from its process environment when it loads the payload
    (`eopf.triggering.payload_loader.prepare_triggering_payload`), so the payload carries `${AWS_ACCESS_KEY_ID}`
    and the processor activity puts the value in the EOPF process's environment only.
    """

    model_config = ConfigDict(extra="forbid")

    endpoint_url: str | None = None
    """None writes `${S3_ENDPOINT_URL}`, resolved from the EOPF process environment like the credentials."""
    region_name: str | None = None
    """None writes `${AWS_DEFAULT_REGION}`."""
    key_env: str = "AWS_ACCESS_KEY_ID"
    secret_env: str = "AWS_SECRET_ACCESS_KEY"


class PayloadSpec(BaseModel):
    """Everything `rs_ondemand.dpr.payload.build_payload` needs; references only, no secret."""

    run_id: str = Field(min_length=1)
    """`triggering__id`: names the run in EOPF's logs and report (e.g. the workflow id)."""
    units: list[dict[str, Any]]
    """The processing units, as `build_unit_list` returns them."""
    input_paths: dict[str, str] = Field(default_factory=dict)
    """`{input name: path}` for the `pipeline_input` products (a staged session folder for CADU inputs)."""
    adf_paths: dict[str, list[str]] = Field(default_factory=dict)
    """`{ADF name: [paths]}`; an optional ADF that was not found is simply absent."""
    output_paths: dict[str, str] = Field(default_factory=dict)
    """`{output name: folder}`, unique per run (see `run_output_prefix`); a `file` output is written to a file
    named after it in its folder."""
    storage: S3StorageRef = Field(default_factory=S3StorageRef)
    dask: DaskClusterSpec | None = None
    """None leaves `context_managers` empty: the processor activity adds the one of the request's cluster label
    (as the RS DPR service injects its Dask context)."""
    external_modules: list[dict[str, Any]] = Field(default_factory=list)
    """The task table's `external_modules` (e.g. a reader engine); unit modules are imported first anyway."""
    unit_parameters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Extra `parameters` per unit name, over the task table step's."""
    progress_file: str | None = "progress.jsonl"
    """Where the progress callback appends events, relative to the run's working directory; None: no callback."""
    dry_run: bool = False
    """`triggering__dry_run`: EOPF validates the plan and paths without running or writing anything."""
    dask_config: dict[str, Any] = Field(default_factory=dict)
    """The payload's `dask_config`: Dask settings for the run (e.g. `distributed.worker.local_directory`)."""
    config_files: list[str] = Field(default_factory=list)
    """EOPF configuration files (the payload's `config`), absolute or relative to the run's working directory."""
    logging_files: list[str] = Field(default_factory=list)
    """Logging configuration files (the payload's `logging`)."""


# --- Running a processor -----------------------------------------------------------------------------------------


class RunProcessorInput(BaseModel):
    """One EOPF run. The payload comes from S3 (`s3_payload_file`, as RS) or inline (`payload_yaml`)."""

    run_id: str = Field(min_length=1)
    dask_cluster_label: str = Field(min_length=1)
    """A label of the worker's Dask cluster map (RS's `cluster_label`, e.g. "dask-l0")."""
    s3_payload_file: str | None = None
    payload_yaml: str | None = None

    @model_validator(mode="after")
    def _one_payload_source(self) -> RunProcessorInput:
        if (self.s3_payload_file is None) == (self.payload_yaml is None):
            raise ValueError("give exactly one of 's3_payload_file' and 'payload_yaml'")
        return self


class WrittenProduct(BaseModel):
    output_id: str
    """The payload's output product id (the task table's output name)."""
    path: str
    """Where the product was written, e.g. s3://bucket/owner/collection/<run>/<product id>.zarr."""
    unit: str | None = None


class ProcessorProgress(BaseModel):
    """Heartbeat details of a running processor, from the EOPF workflow callback events."""

    event: str = "starting"
    """The last EOPF workflow event (`before_unit`, `after_output_write_flush`, ...)."""
    pid: int | None = None
    """The EOPF driver's pid, which is also its process group."""
    unit: str | None = None
    percent: int = 0
    """EOPF's own estimate (its "Workflow progress: N%" log lines)."""
    units_done: int = 0
    units_total: int = 0
    outputs_written: int = 0
    elapsed_s: float = 0.0
    trace_id: str | None = None
    """The OpenTelemetry trace the EOPF process joined (from its `TRACEPARENT`)."""


class RunProcessorResult(BaseModel):
    status: str
    """EOPF's report status: `completed`, or `dry_run` for a validation-only run (`invalid` when EOPF refused
    the payload of a dry run)."""
    written_products: list[WrittenProduct] = Field(default_factory=list)
    duration_s: float = 0.0
    error: str | None = None
    trace_id: str | None = None
    """The OpenTelemetry trace the EOPF process joined: its own spans are there."""


# --- Publishing the processed products ---------------------------------------------------------------------------


class ItemLink(BaseModel):
    """A catalog item by reference: what a product was derived from, or what was published."""

    collection: str
    item_id: str


class Provenance(BaseModel):
    """Where published products come from: their items' `processing:*` fields and `derived_from` links."""

    workflow_id: str
    processor_name: str
    processor_version: str = ""
    processed_at: str
    """ISO 8601 time of the processing (`processing:datetime`), e.g. the workflow's time when the run ended."""
    derived_from: list[ItemLink] = Field(default_factory=list)
    """The input items and ADF items of the run."""
    catalog_url: str | None = None
    """Base of the `derived_from` hrefs (`<url>/collections/<c>/items/<id>`); None: the catalog the publishing
    activity writes to, which a workflow cannot know (it reads no settings)."""


class PublishProductsInput(BaseModel):
    owner_id: str
    products: list[WrittenProduct]
    targets: dict[str, list[tuple[str, str]]]
    """`{task table output name: [(product:type, collection)]}`, i.e. `DprProcessIn.output_targets()`."""
    provenance: Provenance
    derived_from_by_unit: dict[str, list[ItemLink]] = Field(default_factory=dict)
    """`{unit id: items}`: what the products a unit wrote derive from, through the chain (`provenance.derived_from`
    for a product whose unit is not listed)."""


class PublishProductsResult(BaseModel):
    items: list[ItemLink]
    """The published items, in the order of the products."""
