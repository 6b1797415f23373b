"""A DPR request applied to its task table: the units, the inputs each reads, its ADF alternatives as STAC queries.

Pure (no I/O): the `plan_processing` activity and `rs-ondemand plan dpr` both call `plan_request`. Everything that
can be wrong with a request and its task table is found here, before any staging or processing starts. The values
the task table's placeholders take come from the request (`{external_variable.X}`) and from the catalog items of
its input products (`{<input>.<property>}`), which the caller reads and passes as `input_properties`; without them
(a plan made without the stack) those placeholders are listed as unresolved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rs_ondemand.dpr.queries import aux_collection, filled_query, stac_query
from rs_ondemand.dpr.tasktable import TaskTableError
from rs_ondemand.dpr.units import build_unit_list
from rs_ondemand.dpr.variables import (
    external_variables_used,
    format_variable,
    input_properties_used,
    substitute_input_properties,
)
from rs_ondemand.models.dpr import (
    STANDARD_VARIABLES,
    AdfAlternative,
    AdfItem,
    AdfSpec,
    DprProcessIn,
    InputSpec,
    ProcessingPlan,
    UnitPlan,
)
from rs_ondemand.models.staging import StacQuery


class RequestMismatchError(TaskTableError):
    """The request names inputs, outputs, ADFs or variables the task table does not have, or misses mandatory
    ones."""


class InputPropertyError(TaskTableError):
    """A `{<input>.<property>}` placeholder names an input product the request does not give, or a property its
    catalog item does not have."""


def plan_request(
    request: DprProcessIn,
    tasktable: dict[str, Any],
    input_properties: Mapping[str, Mapping[str, Any]] | None = None,
) -> ProcessingPlan:
    """The processing plan of `request` on `tasktable`.

    Args:
        input_properties: `{input name: catalog item properties}` of the request's input products that the
            table's `{<input>.<property>}` placeholders name (`input_properties_needed` tells which); None
            leaves those placeholders unresolved (listed in the plan's `unresolved`).

    Raises:
        TaskTableError: the task table is malformed or the pipeline/unit unknown (the original's messages).
        QueryError: an ADF alternative's query cannot be made a valid STAC search.
        AuxCollectionError: no collection can be chosen for an ADF.
        RequestMismatchError: the request's inputs, outputs, ADFs or variables do not match the task table.
        InputPropertyError: a placeholder names an input product or property that does not exist.
    """
    _check_variables(request, tasktable)
    modes = [mode.value for mode in request.processing_mode] or None
    units = build_unit_list(tasktable, request.pipeline, request.unit, modes, external_variables=request.variables())
    inputs = request.input_items()
    targets = request.output_targets()
    _check_names("input_products", inputs, _pipeline_entries(units, "input_products", "pipeline_input"))
    produced = _pipeline_entries(units, "output_products", "pipeline_output")
    warnings = _check_outputs(targets, produced)

    used = input_properties_used(units)
    _check_placeholder_inputs(used, inputs)
    values: dict[str, Any] = {}
    if input_properties is not None:
        values = {key: _property(key, input_properties, inputs) for key in used}
        units = substitute_input_properties(units, values)
    unresolved = [key for key in used if key not in values]

    _check_supplied_adfs(request, units)
    plans = [_unit_plan(unit, inputs, request, tasktable, set(unresolved)) for unit in units]
    modules = tasktable.get("external_modules")
    configuration = _configuration_paths(tasktable)
    return ProcessingPlan(
        processor_name=request.processor_name,
        units=units,
        unit_plans=plans,
        external_modules=list(modules) if isinstance(modules, list) else [],
        output_collections={name: pairs[0][1] for name, pairs in targets.items() if name in produced},
        variables={name: format_variable(name, value) for name, value in request.variables().items()},
        input_properties=_nested(values),
        unresolved=unresolved,
        warnings=warnings,
        dask_config=dict(request.dask_config),
        config_files=configuration.get("config", []),
        logging_files=configuration.get("logging", []),
    )


def input_properties_needed(request: DprProcessIn, tasktable: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """`{input name: (item id, collection)}` of the input products whose catalog properties the plan of `request`
    needs (an unresolved plan says which)."""
    plan = plan_request(request, tasktable)
    names = {key.partition(".")[0] for key in plan.unresolved}
    return {name: ref for name, ref in request.input_items().items() if name in names}


def _check_variables(request: DprProcessIn, tasktable: dict[str, Any]) -> None:
    """A request variable the task table neither declares nor uses is a mistake (a typo would be ignored)."""
    declared = tasktable.get("external_variables")
    known = set(declared) if isinstance(declared, list) else set()
    known |= external_variables_used(tasktable) | set(STANDARD_VARIABLES)
    unknown = sorted(set(request.external_variables) - known)
    if unknown:
        listed = ", ".join(f'"{name}"' for name in sorted(known - set(STANDARD_VARIABLES))) or "none"
        raise RequestMismatchError(
            f"'external_variables' names {unknown}, which the task table neither declares nor uses "
            f"(its other variables: {listed})."
        )


def _pipeline_entries(units: list[dict[str, Any]], kind: str, origin: str) -> dict[str, bool]:
    """Name → mandatory, of the entries of `kind` at the pipeline's ends (`pipeline_input`/`pipeline_output`)."""
    entries: dict[str, bool] = {}
    for unit in units:
        for entry in unit.get(kind, []):
            if origin in str(entry.get("origin", origin)):
                entries[entry["name"]] = entries.get(entry["name"], False) or bool(entry.get("mandatory", True))
    return entries


def _check_names(field: str, given: Mapping[str, Any], expected: Mapping[str, bool]) -> None:
    unknown = sorted(set(given) - set(expected))
    if unknown:
        listed = ", ".join(f'"{name}"' for name in sorted(expected)) or "none"
        raise RequestMismatchError(f"'{field}' names {unknown}, which no unit of the request has (it has: {listed}).")
    _check_mandatory(field, given, expected)


def _check_mandatory(field: str, given: Mapping[str, Any], expected: Mapping[str, bool]) -> None:
    missing = sorted(name for name, mandatory in expected.items() if mandatory and name not in given)
    if missing:
        raise RequestMismatchError(f"'{field}' has no entry for the mandatory {missing}.")


def _check_outputs(targets: Mapping[str, Any], produced: Mapping[str, bool]) -> list[str]:
    """RS sends one output map for every pipeline of a processor: entries this pipeline does not produce are
    reported, not refused; a mandatory output without an entry is refused."""
    field = "generated_product_to_collection_identifier"
    _check_mandatory(field, targets, produced)
    return [
        f"{field} maps {name!r}, which no unit of this request produces: ignored"
        for name in sorted(set(targets) - set(produced))
    ]


def _check_placeholder_inputs(used: list[str], inputs: Mapping[str, Any]) -> None:
    for key in used:
        name, _, prop = key.partition(".")
        if name not in inputs:
            given = ", ".join(f'"{given}"' for given in inputs)
            raise InputPropertyError(
                f'The task table uses "{{{key}}}", but the request has no input product "{name}" '
                f"(it gives: {given}) to read the property {prop!r} from."
            )


def _property(key: str, properties: Mapping[str, Mapping[str, Any]], inputs: Mapping[str, tuple[str, str]]) -> Any:
    name, _, prop = key.partition(".")
    item = properties.get(name, {})
    if prop not in item:
        item_id, collection = inputs[name]
        raise InputPropertyError(
            f'The task table uses "{{{key}}}", but input product "{name}" (item {item_id!r} in collection '
            f"{collection!r}) has no property {prop!r}."
        )
    return item[prop]


def _nested(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    nested: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        name, _, prop = key.partition(".")
        nested.setdefault(name, {})[prop] = value
    return nested


def _check_supplied_adfs(request: DprProcessIn, units: list[dict[str, Any]]) -> None:
    adfs = {entry["name"]: entry for unit in units for entry in unit.get("input_adfs", [])}
    unknown = sorted(set(request.adfs) - set(adfs))
    if unknown:
        listed = ", ".join(f'"{name}"' for name in adfs) or "none"
        raise RequestMismatchError(
            f"'adfs' supplies {unknown}, which no unit of the request uses (its ADFs: {listed})."
        )
    for unit in units:
        for entry in unit.get("input_adfs", []):
            if entry.get("mandatory") and not entry.get("alternatives") and entry["name"] not in request.adfs:
                raise RequestMismatchError(
                    f'ADF "{entry["name"]}" of unit "{unit["id"]}" is mandatory and the task table gives no way to '
                    "search for it: supply it in the request's 'adfs' (an s3:// URL or [item id, collection])."
                )


def _configuration_paths(tasktable: dict[str, Any]) -> dict[str, list[str]]:
    """The processor's EOPF configuration and logging files named by `tasktable.configuration_path`
    (`processor`/`config`: configuration files, `logging`: logging configuration files)."""
    header = tasktable.get("tasktable")
    paths = header.get("configuration_path") if isinstance(header, dict) else None
    if not isinstance(paths, dict):
        return {}

    def listed(*keys: str) -> list[str]:
        values = [paths.get(key) for key in keys]
        found = [v for value in values for v in (value if isinstance(value, list) else [value])]
        return [str(path) for path in found if isinstance(path, str) and path]

    return {"config": listed("processor", "config"), "logging": listed("logging")}


def _unit_plan(
    unit: dict[str, Any],
    inputs: Mapping[str, tuple[str, str]],
    request: DprProcessIn,
    tasktable: dict[str, Any],
    unresolved: set[str],
) -> UnitPlan:
    return UnitPlan(
        name=unit["id"],
        inputs=[
            InputSpec(
                name=entry["name"],
                item_id=inputs[entry["name"]][0],
                collection=inputs[entry["name"]][1],
                path_type=str(entry.get("type") or "folder").lower(),
            )
            for entry in unit.get("input_products", [])
            if "pipeline_input" in str(entry.get("origin", "pipeline_input")) and entry["name"] in inputs
        ],
        adfs=[_adf_spec(entry, request, tasktable, unit["id"], unresolved) for entry in unit.get("input_adfs", [])],
    )


def _adf_spec(
    entry: dict[str, Any], request: DprProcessIn, tasktable: dict[str, Any], unit: str, unresolved: set[str]
) -> AdfSpec:
    name = str(entry["name"])
    supplied = _supplied(request.adfs.get(name))
    if supplied is not None:
        # Supplied by the request: its alternatives are not searched, so they need no value either.
        return AdfSpec(name=name, mandatory=bool(entry.get("mandatory", False)), alternatives=[], supplied=supplied)
    alternatives = []
    for alternative in entry.get("alternatives") or []:
        query = alternative.get("query") if isinstance(alternative, dict) else None
        if not isinstance(query, dict) or not isinstance(query.get("name"), str):
            raise TaskTableError(f'ADF "{name}" of unit "{unit}": an alternative has no query name: {alternative!r}')
        parameters = query.get("parameters") or {}
        waiting = [key for key in input_properties_used(parameters) if key in unresolved]
        product_type = parameters.get("product_type")
        collection = aux_collection(product_type, request.auxiliary_product_to_collection_identifier, request.satellite)
        body = (
            filled_query(tasktable, query["name"], parameters)
            if waiting
            else stac_query(tasktable, query["name"], parameters, adf=name)
        )
        alternatives.append(
            AdfAlternative(
                order=alternative.get("order") if isinstance(alternative.get("order"), int | float) else None,
                timeout_seconds=max(0, int(alternative.get("timeout_seconds") or 0)),
                query_name=query["name"],
                product_type=str(product_type) if product_type is not None else None,
                collection=collection,
                query=StacQuery.model_validate(body),
                unresolved=waiting,
            )
        )
    return AdfSpec(name=name, mandatory=bool(entry.get("mandatory", False)), alternatives=alternatives)


def _supplied(source: str | tuple[str, str] | None) -> AdfItem | None:
    if source is None:
        return None
    if isinstance(source, str):
        return AdfItem(hrefs=[source])
    item_id, collection = source
    return AdfItem(collection=collection, id=item_id)
