"""The EOPF 3.0 trigger payload of a DPR run, built from the processing-unit list (pure, no I/O).

Shape (the example shipped in the eopf 3.0 wheel, `eopf/triggering/example/trigger.yaml`; see
docs/rs-compatibility.md#payload): `general_configuration`,
`external_modules`, `workflow`, `io` (`input_products`, `adfs`, `output_products` with `engine`,
`reader_params` / `adf_params` / `writer_params`), `context_managers` (the Dask context) and
`workflow_callbacks`. The older RS dialects (`I/O`, `store_params`, lists of one-key dicts) are not produced:
eopf 3.0 rejects or silently ignores them (docs/rs-compatibility.md#q9).

Secrets are never written: S3 credentials (and dask-gateway secrets) appear as `${VAR}` placeholders that EOPF
resolves from its own process environment when it loads the payload.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from rs_ondemand.dpr.units import unit_class_name
from rs_ondemand.errors import InvalidInputError
from rs_ondemand.models.dpr import AdfItem, ProcessingPlan, UnitResolution
from rs_ondemand.models.processor_run import (
    AddressDaskCluster,
    DaskClusterSpec,
    GatewayDaskCluster,
    LocalDaskCluster,
    PayloadSpec,
    S3StorageRef,
)

DASK_CONTEXT_MODULE = "eopf.dask_utils.dask_context_manager"
GATEWAY_CONTEXT_MODULE = "rs_eopf_hooks.gateway"
PROGRESS_CALLBACK_MODULE = "rs_eopf_hooks.progress"
TRACING_MODULE = "rs_eopf_hooks.tracing"

ENGINE_BY_STORE_TYPE = {"cadu": "cadu", "zarr": "cpm_zarr", "safe": "safe", "netcdf": "cpm_netcdf"}
"""Task tables of the RS era name a `store_type`; eopf 3.0 readers and writers are chosen by `engine`."""
PATH_TYPES = {"folder": "folder", "file": "file", "filename": "file", "regex": "regex"}
WRITE_MODE_BY_OPENING_MODE = {"CREATE": "w-", "CREATE_OVERWRITE": "w", "UPDATE": "a"}


class PayloadError(InvalidInputError):
    """The request cannot make a payload: an input, ADF or output the processor needs has no path."""


def run_output_prefix(bucket: str, owner_id: str, collection: str, run_id: str) -> str:
    """The folder a run's products of one collection go to: unique per run, so reruns never overwrite
    (docs/rs-compatibility.md#q11; the original wrote every run to `s3://bucket/owner/collection`)."""
    return f"s3://{bucket}/{owner_id}/{collection}/{run_id}/"


def env_placeholder(variable: str) -> str:
    return "${" + variable + "}"


def storage_options(storage: S3StorageRef) -> dict[str, Any]:
    """s3fs options naming the credentials by environment variable (EOPF resolves `${VAR}` at load time)."""
    return {
        "key": env_placeholder(storage.key_env),
        "secret": env_placeholder(storage.secret_env),
        "client_kwargs": {
            "endpoint_url": storage.endpoint_url or env_placeholder("S3_ENDPOINT_URL"),
            "region_name": storage.region_name or env_placeholder("AWS_DEFAULT_REGION"),
        },
    }


def _options_for(path: str, storage: S3StorageRef) -> dict[str, Any]:
    return {"storage_options": storage_options(storage)} if path.startswith("s3://") else {}


def _engine(entry: Mapping[str, Any]) -> str | None:
    if entry.get("engine"):
        return str(entry["engine"])
    store_type = entry.get("store_type")
    return ENGINE_BY_STORE_TYPE.get(str(store_type).lower(), str(store_type)) if store_type else None


def _path_type(entry: Mapping[str, Any], default: str) -> str:
    return PATH_TYPES.get(str(entry.get("type", default)).lower(), default)


def _adf_path(name: str, paths: Sequence[str]) -> str:
    """EOPF takes one path per ADF: the file itself, or the one folder (staged item) holding all the files."""
    if len(paths) == 1:
        return paths[0]
    folders = {posixpath.dirname(path.rstrip("/")) for path in paths}
    if len(folders) == 1:
        return folders.pop() + "/"
    raise PayloadError(f"ADF {name!r} resolved to {len(paths)} files in different folders; EOPF takes one path")


EXTENSION_BY_ENGINE = {"cpm_zarr": ".zarr", "fast_zarr": ".zarr", "cpm_netcdf": ".nc"}
"""The file a `type: file` output is written to ends with its writer's extension (EOPF checks it)."""


def _input_entry(entry: Mapping[str, Any], input_id: str, path: str, storage: S3StorageRef) -> dict[str, Any]:
    out: dict[str, Any] = {"id": input_id, "path": path, "type": _path_type(entry, "file")}
    if engine := _engine(entry):
        out["engine"] = engine
    if out["type"] == "regex":
        out["regex"] = entry.get("regex") or entry.get("regex_expression") or "*"
        if entry.get("multiplicity") or entry.get("regex_multiplicity"):
            out["multiplicity"] = entry.get("multiplicity") or entry.get("regex_multiplicity")
    out["reader_params"] = {**dict(entry.get("reader_params") or {}), **_options_for(path, storage)}
    return out


def output_path(entry: Mapping[str, Any], folder: str) -> str:
    """Where an output goes in its run folder: the folder itself for a `folder` output (EOPF names the product
    inside), `<folder>/<output name><extension>` for a `file` output (the path is the product)."""
    if _path_type(entry, "folder") != "file":
        return folder
    extension = EXTENSION_BY_ENGINE.get(_engine(entry) or "cpm_zarr", "")
    return f"{folder.rstrip('/')}/{entry['name']}{extension}"


def _output_entry(entry: Mapping[str, Any], folder: str, storage: S3StorageRef) -> dict[str, Any]:
    engine = _engine(entry) or "cpm_zarr"
    path = output_path(entry, folder)
    writer = dict(entry.get("writer_params") or {})
    writer.setdefault("mode", WRITE_MODE_BY_OPENING_MODE.get(str(entry.get("opening_mode", "")), "w"))
    writer.update(_options_for(path, storage))
    return {
        "id": entry["name"],
        "path": path,
        "type": _path_type(entry, "folder"),
        "engine": engine,
        "writer_params": writer,
        "apply_eoqc": bool(entry.get("apply_eoqc", False)),
    }


def _is_pipeline_input(entry: Mapping[str, Any]) -> bool:
    return "pipeline_input" in str(entry.get("origin", "pipeline_input"))


def _is_pipeline_output(entry: Mapping[str, Any], output_ids: set[str]) -> bool:
    """Written as the pipeline's output: its step says so (an internal product of the same name is not); a
    table whose step gives no origin writes the outputs the request maps."""
    origin = entry.get("origin")
    return entry["name"] in output_ids and (origin is None or "pipeline_output" in str(origin))


def _workflow_step(
    unit: Mapping[str, Any],
    ids: _PayloadIds,
    extra_parameters: Mapping[str, Any],
) -> dict[str, Any]:
    inputs = {}
    for entry in unit.get("input_products", []):
        if entry.get("reference"):
            inputs[entry["name"]] = entry["reference"]  # another step's product: `<unit id>.<product>`
        elif _is_pipeline_input(entry):
            inputs[entry["name"]] = ids.inputs.get(entry["name"], entry["name"])
        else:
            inputs[entry["name"]] = entry["origin"]  # a single unit of a chain: as the table writes it
    # EOPF matches ADF names case-sensitively against the unit's own: the task table's spelling, both sides.
    adfs = {entry["name"]: entry["name"] for entry in unit.get("input_adfs", []) if entry["name"] in ids.adfs}
    outputs = {
        str(entry.get("regex") or entry["name"]): entry["name"]
        for entry in unit.get("output_products", [])
        if _is_pipeline_output(entry, ids.outputs)
    }
    return {
        "name": unit.get("id") or unit["name"],
        "module": unit["module"],
        "processing_unit": unit_class_name(unit),
        "active": True,
        "validate": False,
        "inputs": inputs,
        "adfs": adfs,
        "outputs": outputs,
        "parameters": {**dict(unit.get("parameters") or {}), **dict(extra_parameters)},
    }


@dataclass
class _PayloadIds:
    """The ids `io` declares: inputs by task-table name, ADFs, outputs."""

    inputs: dict[str, str] = field(default_factory=dict)
    adfs: set[str] = field(default_factory=set)
    outputs: set[str] = field(default_factory=set)


def _input_id(name: str, taken: set[str]) -> str:
    """An input's id: its name, unless a pipeline output has it. EOPF looks a unit's input up among the outputs
    first and draws a dependency on whatever writes that id: `slcs` read by the first step and `slcs` written by
    the last would read the wrong product, and make a cycle."""
    candidate, number = name, 1
    while candidate in taken:
        candidate = f"{name}.input" if number == 1 else f"{name}.input{number}"
        number += 1
    return candidate


def _io_section(spec: PayloadSpec) -> tuple[dict[str, Any], _PayloadIds]:
    """`io`, and the ids it declares."""
    ids = _PayloadIds(outputs={name for name in spec.output_paths})
    inputs: dict[str, dict[str, Any]] = {}
    adfs: dict[str, dict[str, Any]] = {}
    outputs: dict[str, dict[str, Any]] = {}
    for unit in spec.units:
        unit_id = unit.get("id") or unit["name"]
        for entry in unit.get("input_products", []):
            name = entry["name"]
            if entry.get("reference") or not _is_pipeline_input(entry) or name in inputs:
                continue
            if name not in spec.input_paths:
                if entry.get("mandatory", True):
                    raise PayloadError(f"input {name!r} of unit {unit_id!r} has no path in the request")
                continue
            ids.inputs[name] = _input_id(name, ids.outputs | set(ids.inputs.values()))
            inputs[name] = _input_entry(entry, ids.inputs[name], spec.input_paths[name], spec.storage)
        for entry in unit.get("input_adfs", []):
            name = entry["name"]
            paths = spec.adf_paths.get(name)
            if not paths:
                if entry.get("mandatory", False):
                    raise PayloadError(
                        f"mandatory ADF {name!r} of unit {unit.get('id', unit['name'])!r} was not resolved"
                    )
                continue  # an optional ADF that was not found: the processor runs without it
            path = _adf_path(name, paths)
            adfs[name] = {"id": name, "path": path, "adf_params": _options_for(path, spec.storage)}
        for entry in unit.get("output_products", []):
            name = entry["name"]
            if _is_pipeline_output(entry, ids.outputs):
                outputs[name] = _output_entry(entry, spec.output_paths[name], spec.storage)
            elif entry.get("origin") == "pipeline_output" and entry.get("mandatory", False):
                raise PayloadError(f"output {name!r} of unit {unit_id!r} has no target folder")
    ids.adfs = set(adfs)
    io = {
        "input_products": list(inputs.values()),
        "adfs": list(adfs.values()),
        "output_products": list(outputs.values()),
    }
    return io, ids


def dask_context_manager(dask: DaskClusterSpec) -> dict[str, Any]:
    """The `context_managers` entry that puts the run on the chosen Dask cluster."""
    if isinstance(dask, LocalDaskCluster):
        config: dict[str, Any] = {
            "n_workers": dask.n_workers,
            "threads_per_worker": dask.threads_per_worker,
            "host": "127.0.0.1",
            # No dashboard: nothing to look at in a batch run, and no port to collide with a parallel run.
            "dashboard_address": None,
        }
        if dask.memory_limit:
            config["memory_limit"] = dask.memory_limit
        parameters: dict[str, Any] = {"cluster_type": "local", "cluster_config": config}
        return {"module": DASK_CONTEXT_MODULE, "context_manager": "DaskContext", "parameters": parameters}
    if isinstance(dask, AddressDaskCluster):
        # A cluster EOPF does not own is shared by concurrent runs: EOPF's `auto-gc` worker plugin is registered by
        # name when a run starts and removed when it ends, so the first run to end would break every other one
        # ("The worker plugin auto-gc does not exist", measured by `bench scale`).
        parameters = {"cluster_type": "address", "client_config": {"address": dask.address}, "auto_gc": False}
        return {"module": DASK_CONTEXT_MODULE, "context_manager": "DaskContext", "parameters": parameters}
    if isinstance(dask, GatewayDaskCluster):
        # Shared by the runs that name its label: no `auto-gc` plugin (see the address case).
        parameters = {"address": dask.address, "cluster_label": dask.cluster_name, "auto_gc": False}
        if dask.cluster_instance:
            parameters["cluster_instance"] = dask.cluster_instance
        if dask.auth is not None:
            auth: dict[str, Any] = {"type": dask.auth.type}
            if dask.auth.type == "basic":
                auth |= {"username": dask.auth.username, "password": env_placeholder(dask.auth.password_env)}
            else:
                auth["api_token"] = env_placeholder(dask.auth.api_token_env)
            parameters["auth"] = auth
        return {
            "module": GATEWAY_CONTEXT_MODULE,
            "context_manager": "labelled_gateway_cluster",
            "parameters": parameters,
        }
    raise TypeError(f"unknown Dask cluster {dask!r}")


def progress_callback(path: str) -> dict[str, Any]:
    """The `workflow_callbacks` entry appending every workflow event to `path` (JSON lines)."""
    return {"module": PROGRESS_CALLBACK_MODULE, "function": "record_progress", "parameters": {"path": path}}


def payload_spec(
    plan: ProcessingPlan,
    resolutions: Sequence[UnitResolution],
    *,
    run_id: str,
    output_folder: Callable[[str], str],
    adf_folder: Callable[[AdfItem], str],
    storage: S3StorageRef,
    dry_run: bool = False,
) -> PayloadSpec:
    """What `build_payload` needs for a plan whose units were resolved: `output_folder(collection)` is the run's
    folder in a collection, `adf_folder(item)` where a planned ADF item (not staged: no hrefs) would be."""
    return PayloadSpec(
        run_id=run_id,
        units=plan.units,
        input_paths={name: path for unit in resolutions for name, path in unit.input_paths.items()},
        adf_paths={
            name: [path for item in items for path in item.hrefs or [adf_folder(item)]]
            for unit in resolutions
            for name, items in unit.adfs.items()
        },
        output_paths={name: output_folder(collection) for name, collection in plan.output_collections.items()},
        storage=storage,
        external_modules=plan.external_modules,
        dry_run=dry_run,
        dask_config=plan.dask_config,
        config_files=plan.config_files,
        logging_files=plan.logging_files,
    )


def build_payload(spec: PayloadSpec) -> dict[str, Any]:
    """The EOPF 3.0 payload of the units in `spec`.

    Raises:
        PayloadError: a mandatory input, ADF or output has no path.
    """
    if not spec.units:
        raise PayloadError("no processing unit to run")
    io, ids = _io_section(spec)
    general: dict[str, Any] = {
        "triggering__id": spec.run_id,
        "logging__level": "INFO",
        # EOPF's example sleeps 90 s after the run to leave time for the dashboard: nothing to wait for here.
        "triggering__wait_before_exit": 0,
    }
    if not spec.logging_files:
        # Log lines on the output we read (progress, the execution report); EOPF refuses it with logging files.
        general["triggering__use_basic_logging"] = True
    if spec.dry_run:
        general["triggering__dry_run"] = True
    # Unit modules are imported before `io` is parsed, so a reader engine they register (`cadu`) is known.
    modules = [*spec.external_modules, *({"name": unit["module"]} for unit in spec.units)]
    unique_modules = list({str(module["name"]): dict(module) for module in modules}.values())
    payload: dict[str, Any] = {
        "general_configuration": general,
        "external_modules": unique_modules,
        "workflow": [
            _workflow_step(unit, ids, spec.unit_parameters.get(str(unit.get("id") or unit["name"]), {}))
            for unit in spec.units
        ],
        "io": io,
        "context_managers": [dask_context_manager(spec.dask)] if spec.dask is not None else [],
    }
    if spec.dask_config:
        payload["dask_config"] = dict(spec.dask_config)
    if spec.config_files:
        payload["config"] = list(spec.config_files)
    if spec.logging_files:
        payload["logging"] = list(spec.logging_files)
    if spec.progress_file:
        payload["workflow_callbacks"] = [progress_callback(spec.progress_file)]
    return payload


def with_dask_context(payload: Mapping[str, Any], dask: DaskClusterSpec) -> dict[str, Any]:
    """`payload` on the cluster `dask`: any Dask context it named is replaced, other context managers kept."""
    ours = {DASK_CONTEXT_MODULE, GATEWAY_CONTEXT_MODULE}
    others = [cm for cm in payload.get("context_managers") or [] if cm.get("module") not in ours]
    out = {key: value for key, value in payload.items() if key != "dask_context"}
    out["context_managers"] = [dask_context_manager(dask), *others]
    return out


def with_progress_callback(payload: Mapping[str, Any], path: str) -> dict[str, Any]:
    """`payload` reporting its events to `path`: our callback entry is replaced, other callbacks kept."""
    others = [cb for cb in payload.get("workflow_callbacks") or [] if cb.get("module") != PROGRESS_CALLBACK_MODULE]
    return {**payload, "workflow_callbacks": [*others, progress_callback(path)]}


def with_tracing(payload: Mapping[str, Any], eopf_spans: bool) -> dict[str, Any]:
    """`payload` joining the worker's trace: our tracing hook is imported first (before EOPF starts a span), and
    with `eopf_spans` EOPF records its own spans (`triggering__opentelemetry_enabled`)."""
    modules = [m for m in payload.get("external_modules") or [] if m.get("name") != TRACING_MODULE]
    out = {**payload, "external_modules": [{"name": TRACING_MODULE}, *modules]}
    if eopf_spans:
        general = dict(payload.get("general_configuration") or {})
        out["general_configuration"] = general | {"triggering__opentelemetry_enabled": True}
    return out


def payload_yaml(payload: Mapping[str, Any]) -> str:
    """The payload as YAML, keys in the builder's order (RS dumps with `sort_keys=False` too)."""
    return yaml.safe_dump(dict(payload), sort_keys=False, default_flow_style=False, allow_unicode=True)
