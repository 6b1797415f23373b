"""Contracts of DPR processing: the operator's `DprProcessIn`, the plan of units and ADFs, their resolution."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, Field, model_validator

from rs_ondemand.models.common import FlowEnv, OperatorInput, SafeName
from rs_ondemand.models.operator import RequestOptions
from rs_ondemand.models.progress import Progress
from rs_ondemand.models.staging import StacQuery
from rs_ondemand.models.timewindow import UtcDatetime


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class WorkflowType(StrEnum):
    BENCHMARKING = "benchmarking"
    ON_DEMAND = "on-demand"
    SYSTEMATIC = "systematic"


class ProcessingMode(StrEnum):
    NRT = "nrt"
    NTC = "ntc"
    REPROCESSING = "reprocessing"
    SUBS = "subs"
    ALWAYS = "always"


MAX_ENTRIES = 200
"""Entries of a request's lists and maps: far above any RS processor's, far below Temporal's payload limits."""

ItemAndCollection = tuple[SafeName, SafeName]
"""`(<stac item id>, <catalog collection>)`, a JSON list of two strings."""

VariableName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
VariableValue = Annotated[str, Field(max_length=256)] | bool | int | float
"""A task-table variable's value: a scalar (a datetime is an ISO 8601 string)."""
S3Href = Annotated[str, Field(pattern=r"^s3://[^/]+/.+", max_length=1024)]
AdfSource = S3Href | ItemAndCollection
"""A request-supplied ADF: an object (or folder) in S3, or a catalog item `[item id, collection]`."""
DaskConfigKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]

STANDARD_VARIABLES = ("start_datetime", "end_datetime", "satellite")
"""Variables with a field of their own in the request (the original's)."""


class DprProcessIn(OperatorInput):
    """Input of `DprProcessing`: the original's `DprProcessIn` (docs/rs-compatibility.md#dpr-request), plus our
    options.

    Example: `{"env": {"owner_id": "ops"}, "processor_name": "demo", "processor_version": "0.1.0",
    "dask_cluster_label": "local", "pipeline": "demo_full", "input_products": [{"CADU":
    ["S1A_20241114143038056552", "s1-cadip"]}], "generated_product_to_collection_identifier": [{"DEMOL0":
    ["S01DEMOL0", "s1-demo-l0"]}], "auxiliary_product_to_collection_identifier": {"*": "s1-aux"},
    "start_datetime": "2024-11-14T14:30:38.477Z", "end_datetime": "2024-11-14T14:33:22.662Z",
    "satellite": "sentinel-1a"}`.
    """

    env: FlowEnv
    processor_name: SafeName
    """The processor (a task table of the registry: `demo`, `mockup`, `s1_l0`, ...)."""
    processor_version: str = Field("", max_length=64)
    """Informational, as in the original; recorded in the published items' `processing:software`."""
    dask_cluster_label: str = Field(min_length=1)
    """A label of the worker's Dask cluster map (`RS_EOPF_DASK_CLUSTERS`), e.g. `local` or `dask-l0`."""
    s3_payload_file: str | None = Field(None, pattern=r"^s3://[^/]+/.+")
    """Where the payload YAML goes; default `s3://<work bucket>/dpr/<run>/payload.yaml`
    (`<run>`: docs/interface.md#storage-layout)."""
    pipeline: str | None = Field(None, min_length=1, max_length=128)
    unit: str | None = Field(None, min_length=1, max_length=128)
    priority: Priority = Priority.LOW
    workflow_type: WorkflowType = WorkflowType.ON_DEMAND
    input_products: list[dict[str, ItemAndCollection]] = Field(max_length=MAX_ENTRIES)
    """`[{<task table input name>: [<item id>, <collection>]}]`: the staged products the units read."""
    generated_product_to_collection_identifier: list[dict[str, str | tuple[str, SafeName]]] = Field(
        max_length=MAX_ENTRIES
    )
    """`[{<task table output name>: [<product:type>, <collection>]}]`, or `{<output>: <product:type>}` when the
    collection is named after the type."""
    auxiliary_product_to_collection_identifier: dict[str, SafeName] = Field(max_length=MAX_ENTRIES)
    """ADF product type → catalog collection it is staged into; `"*"` for every other type."""
    processing_mode: list[ProcessingMode] = Field(default_factory=list)
    start_datetime: UtcDatetime | None = None
    end_datetime: UtcDatetime | None = None
    satellite: str | None = Field(None, max_length=64)
    """A task-table external variable (e.g. `sentinel-1a`), also in the default ADF collection name."""
    external_variables: dict[VariableName, VariableValue] = Field(default_factory=dict, max_length=MAX_ENTRIES)
    """The task table's other `{external_variable.<name>}` values, e.g. `{"instrument_mode": "IW",
    "reference_date": "2024-11-14"}` (the newer RS request gives them as top-level keys)."""
    adfs: dict[SafeName, AdfSource] = Field(default_factory=dict, max_length=MAX_ENTRIES)
    """ADFs the request supplies, by the task table's ADF name: `s3://...` or `[item id, collection]`. A supplied
    ADF is not searched for (its alternatives, if any, are skipped)."""
    dask_config: dict[DaskConfigKey, VariableValue] = Field(default_factory=dict, max_length=MAX_ENTRIES)
    """Dask settings for the run (the payload's `dask_config`), e.g.
    `{"distributed.worker.local_directory": "/scratch"}`."""
    tasktable: dict[str, Any] | None = None
    """A task table to use instead of the registry's (tests, new processors); same schema."""
    dry_run: bool = False
    """Plan only: search the ADF alternatives without staging, build the payload, let EOPF validate it
    (`triggering__dry_run`), and neither process nor publish."""
    options: RequestOptions = Field(default_factory=RequestOptions)

    @model_validator(mode="before")
    @classmethod
    def _read_newer_rs_shape(cls, data: Any) -> Any:
        """Also take the newer RS request (rs-dpr-service's parameter calls): `processor: {name, version}`,
        `owner_identifier`, `dask_cluster_name`, `workflow`, and entries as `{name, item_id | product_type,
        collection_name}` objects."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        newer_shape = isinstance(data.get("processor"), dict) or any(
            key in data for key in ("owner_identifier", "dask_cluster_name", "workflow")
        )
        renamed = {"owner_identifier": "env", "dask_cluster_name": "dask_cluster_label", "workflow": "workflow_type"}
        for old, new in renamed.items():
            if old in data and new not in data:
                value = data.pop(old)
                data[new] = {"owner_id": value} if new == "env" else value
        if isinstance(processor := data.get("processor"), dict) and "processor_name" not in data:
            data.pop("processor")
            data["processor_name"] = processor.get("name")
            data.setdefault("processor_version", processor.get("version", ""))
        if newer_shape:
            # Its task-table variables are top-level keys (`instrument_mode`, `reference_date`, ...).
            given = data.get("external_variables")
            variables = dict(given) if isinstance(given, dict) else {}
            for key in [key for key in data if key not in cls.model_fields and _is_scalar(data[key])]:
                variables[key] = data.pop(key)
            if variables and (given is None or isinstance(given, dict)):
                data["external_variables"] = variables
        for key, value_key in (("input_products", "item_id"), ("generated_product_to_collection_identifier", None)):
            if isinstance(data.get(key), list):
                data[key] = [_entry_pair(entry, value_key) for entry in data[key]]
        aux = data.get("auxiliary_product_to_collection_identifier")
        if isinstance(aux, list) and all(isinstance(entry, dict) for entry in aux):
            # A list of one-key objects, or of `{product_type, collection_name}` objects.
            pairs = [_entry_pair(entry, None, key="product_type") for entry in aux]
            data["auxiliary_product_to_collection_identifier"] = {
                key: (target[1] if isinstance(target, list) else target)
                for pair in pairs
                for key, target in pair.items()
            }
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        # The original's messages, then ours.
        if (self.pipeline is None) == (self.unit is None):
            raise ValueError("Exactly one of 'pipeline' or 'unit' must be provided.")
        for name in ("generated_product_to_collection_identifier", "auxiliary_product_to_collection_identifier"):
            if not getattr(self, name):
                raise ValueError(f"'{name}' must not be empty.")
        if not self.input_products or not any(self.input_products):
            raise ValueError("'input_products' must not be empty.")
        inputs = [name for entry in self.input_products for name in entry]
        if duplicates := sorted({name for name in inputs if inputs.count(name) > 1}):
            raise ValueError(f"'input_products' names {duplicates} more than once.")
        if repeated := sorted(set(self.external_variables) & set(STANDARD_VARIABLES)):
            raise ValueError(f"'external_variables' repeats {repeated}: give them as the request's own fields.")
        if self.start_datetime and self.end_datetime and self.end_datetime < self.start_datetime:
            raise ValueError(
                f"end_datetime {self.end_datetime.isoformat()} is before start_datetime "
                f"{self.start_datetime.isoformat()}"
            )
        return self

    def variables(self) -> dict[str, Any]:
        """Values of the task table's `{external_variable.X}`: the standard fields that are set, and the others."""
        standard: dict[str, Any] = {"start_datetime": self.start_datetime, "end_datetime": self.end_datetime}
        standard["satellite"] = self.satellite
        return {name: value for name, value in standard.items() if value is not None} | self.external_variables

    def input_items(self) -> dict[str, ItemAndCollection]:
        return {name: ref for entry in self.input_products for name, ref in entry.items()}

    def output_targets(self) -> dict[str, list[tuple[str, str]]]:
        """Output name → its `(product type, collection)` pairs, in the request's order."""
        targets: dict[str, list[tuple[str, str]]] = {}
        for entry in self.generated_product_to_collection_identifier:
            for output, target in entry.items():
                pair = (target, target) if isinstance(target, str) else (target[0], target[1])
                targets.setdefault(output, []).append(pair)
        return targets


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _entry_pair(entry: Any, value_key: str | None, key: str = "name") -> Any:
    """`{name, item_id, collection_name}` → `{name: [item_id, collection_name]}` (`product_type` when
    `value_key` is None); an entry already in the original's `{name: value}` shape is kept."""
    if not isinstance(entry, dict) or "collection_name" not in entry or key not in entry:
        return entry
    value = entry.get(value_key or "product_type", "*")
    return {entry[key]: [value, entry["collection_name"]]}


# --- The plan: what the task table asks for, with the request's values filled in ---------------------------------


class AdfItem(BaseModel):
    """An ADF's catalog item: staged (`hrefs` known) or, in a dry run, only planned (`hrefs` empty). An ADF the
    request gives as an S3 object has no item: its `collection` and `id` are empty."""

    collection: str = ""
    id: str = ""
    hrefs: list[str] = Field(default_factory=list)


class AdfAlternative(BaseModel):
    """One way of finding an ADF: a STAC search of the AUXIP, bounded by its own timeout."""

    order: float | None = None
    timeout_seconds: int = 0
    """Bounds this alternative's search and staging together; 0 means no limit."""
    query_name: str
    product_type: str | None = None
    collection: SafeName
    """Catalog collection the ADF is staged into (map[product_type], map["*"], `<satellite>-aux-<type>`)."""
    query: StacQuery
    unresolved: list[str] = Field(default_factory=list)
    """`<input>.<property>` placeholders still in `query` (a plan made without the catalog): not searchable."""


class AdfSpec(BaseModel):
    name: str
    mandatory: bool
    alternatives: list[AdfAlternative]
    supplied: AdfItem | None = None
    """The ADF the request gives (`adfs`): used as it is, no alternative is searched."""


class InputSpec(BaseModel):
    name: str
    item_id: SafeName
    collection: SafeName
    path_type: str = "folder"
    """The task table's `type`: a `folder` input is the item's folder, a `file` one its single asset."""


class UnitPlan(BaseModel):
    """What a `ProcessingUnit` child resolves: the unit's request inputs and its ADFs."""

    name: str
    """The unit's identifier in the run, `<unit name>.<step>` (a unit may run at several steps)."""
    inputs: list[InputSpec] = Field(default_factory=list)
    adfs: list[AdfSpec] = Field(default_factory=list)


class ProcessingPlan(BaseModel):
    """The task table read and applied to the request (the `plan_processing` activity)."""

    processor_name: str
    units: list[dict[str, Any]]
    """`build_unit_list`'s output: the original's shape, which the payload is built from."""
    unit_plans: list[UnitPlan]
    external_modules: list[dict[str, Any]] = Field(default_factory=list)
    output_collections: dict[str, str]
    """Output name → the collection its run folder is under (the first of its mapping)."""
    variables: dict[str, Any] = Field(default_factory=dict)
    """The task-table variables as the units got them (datetimes in the RS format)."""
    input_properties: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """`{input name: {property: value}}`: the input products' catalog properties the task table uses."""
    unresolved: list[str] = Field(default_factory=list)
    """`<input>.<property>` placeholders left for the catalog to resolve (a plan made without the stack)."""
    warnings: list[str] = Field(default_factory=list)
    dask_config: dict[str, Any] = Field(default_factory=dict)
    """The payload's `dask_config` (the request's)."""
    config_files: list[str] = Field(default_factory=list)
    """EOPF configuration files of the processor (the task table's `configuration_path`)."""
    logging_files: list[str] = Field(default_factory=list)


# --- Resolution: what a `ProcessingUnit` found ----------------------------------------------------------------------

AlternativeOutcomeKind = Literal["found", "empty", "timed_out"]


class AlternativeTried(BaseModel):
    """One alternative as it was tried: shown in `progress` and kept in the result."""

    unit: str
    adf: str
    order: float | None = None
    product_type: str | None = None
    collection: str
    query: StacQuery
    outcome: AlternativeOutcomeKind
    items: list[str] = Field(default_factory=list)
    duration_s: float = 0.0


class UnitInput(BaseModel):
    env: FlowEnv
    plan: UnitPlan
    dry_run: bool = False
    options: RequestOptions = Field(default_factory=RequestOptions)


class UnitResolution(BaseModel):
    """The paths a unit runs on, and how its ADFs were found."""

    name: str
    input_paths: dict[str, str] = Field(default_factory=dict)
    input_items: list[AdfItem] = Field(default_factory=list)
    """The request's input products as catalog items (provenance of the outputs)."""
    adfs: dict[str, list[AdfItem]] = Field(default_factory=dict)
    """ADF name → the items of the winning alternative; a skipped optional ADF is absent."""
    alternatives: list[AlternativeTried] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class PreparePayloadInput(BaseModel):
    run_id: str
    owner_id: str
    s3_payload_file: str | None
    """None: the default location in the work bucket, `dpr/<run id>/payload.yaml`."""
    plan: ProcessingPlan
    resolutions: list[UnitResolution]
    dry_run: bool = False


class PreparedPayload(BaseModel):
    s3_payload_file: str
    payload_yaml: str
    output_prefixes: list[str]
    """The run's output folders (s3:// URLs): what a failed or cancelled run cleans up."""


class DprProcessResult(BaseModel):
    """What `DprProcessing` returns: the plan as run, and what it produced."""

    processor_name: str
    dry_run: bool = False
    units: list[dict[str, Any]]
    alternatives: list[AlternativeTried] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    s3_payload_file: str
    payload_yaml: str
    processor_status: str = ""
    """EOPF's report status: `completed`, or `dry_run`; `invalid` when EOPF refused a dry run's payload."""
    validation_error: str | None = None
    """Why EOPF refused a dry run's payload (ADFs not staged yet have no file for it to check)."""
    processor_trace_id: str | None = None
    """The OpenTelemetry trace the EOPF run joined (with tracing on)."""
    published: list[dict[str, str]] = Field(default_factory=list)
    """`{collection, id}` of every published item."""


class DprProgress(Progress):
    """`progress` of `DprProcessing` and `ProcessingUnit`: the common counts, plus every ADF alternative tried."""

    alternatives: list[AlternativeTried] = Field(default_factory=list)


class UnitProgress(BaseModel):
    """Internal: a `ProcessingUnit` child reports its alternatives to its parent."""

    unit: str
    progress: Progress
    alternatives: list[AlternativeTried] = Field(default_factory=list)
