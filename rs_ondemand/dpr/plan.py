"""A DPR request applied to its task table: the units, the inputs each reads, its ADF alternatives as STAC queries.

Pure (no I/O): the `plan_processing` activity and `rs-ondemand plan dpr` both call `plan_request`. Everything that
can be wrong with a request and its task table is found here, before any staging or processing starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rs_ondemand.dpr.queries import aux_collection, stac_query
from rs_ondemand.dpr.tasktable import TaskTableError
from rs_ondemand.dpr.units import build_unit_list
from rs_ondemand.models.dpr import (
    AdfAlternative,
    AdfSpec,
    DprProcessIn,
    InputSpec,
    ProcessingPlan,
    UnitPlan,
)
from rs_ondemand.models.staging import StacQuery


class RequestMismatchError(TaskTableError):
    """The request names inputs or outputs the task table's units do not have, or misses mandatory ones."""


def plan_request(request: DprProcessIn, tasktable: dict[str, Any]) -> ProcessingPlan:
    """The processing plan of `request` on `tasktable`.

    Raises:
        TaskTableError: the task table is malformed or the pipeline/unit unknown (the original's messages).
        QueryError: an ADF alternative's query cannot be made a valid STAC search.
        AuxCollectionError: no collection can be chosen for an ADF.
        RequestMismatchError: the request's inputs or outputs do not match the units'.
    """
    modes = [mode.value for mode in request.processing_mode] or None
    units = build_unit_list(
        tasktable, request.pipeline, request.unit, modes, external_variables=request.external_variables()
    )
    inputs = request.input_items()
    targets = request.output_targets()
    _check_names("input_products", inputs, _pipeline_entries(units, "input_products", "pipeline_input"))
    _check_names(
        "generated_product_to_collection_identifier",
        targets,
        _pipeline_entries(units, "output_products", "pipeline_output"),
    )
    plans = [_unit_plan(unit, inputs, request, tasktable) for unit in units]
    modules = tasktable.get("external_modules")
    return ProcessingPlan(
        processor_name=request.processor_name,
        units=units,
        unit_plans=plans,
        external_modules=list(modules) if isinstance(modules, list) else [],
        output_collections={name: pairs[0][1] for name, pairs in targets.items()},
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
    missing = sorted(name for name, mandatory in expected.items() if mandatory and name not in given)
    if missing:
        raise RequestMismatchError(f"'{field}' has no entry for the mandatory {missing}.")


def _unit_plan(
    unit: dict[str, Any], inputs: Mapping[str, tuple[str, str]], request: DprProcessIn, tasktable: dict[str, Any]
) -> UnitPlan:
    return UnitPlan(
        name=unit["name"],
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
        adfs=[_adf_spec(entry, request, tasktable, unit["name"]) for entry in unit.get("input_adfs", [])],
    )


def _adf_spec(entry: dict[str, Any], request: DprProcessIn, tasktable: dict[str, Any], unit: str) -> AdfSpec:
    name = str(entry["name"])
    alternatives = []
    for alternative in entry.get("alternatives") or []:
        query = alternative.get("query") if isinstance(alternative, dict) else None
        if not isinstance(query, dict) or not isinstance(query.get("name"), str):
            raise TaskTableError(f'ADF "{name}" of unit "{unit}": an alternative has no query name: {alternative!r}')
        parameters = query.get("parameters") or {}
        product_type = parameters.get("product_type")
        alternatives.append(
            AdfAlternative(
                order=alternative.get("order") if isinstance(alternative.get("order"), int | float) else None,
                timeout_seconds=max(0, int(alternative.get("timeout_seconds") or 0)),
                query_name=query["name"],
                product_type=str(product_type) if product_type is not None else None,
                collection=aux_collection(
                    product_type, request.auxiliary_product_to_collection_identifier, request.satellite
                ),
                query=StacQuery.model_validate(stac_query(tasktable, query["name"], parameters, adf=name)),
            )
        )
    return AdfSpec(name=name, mandatory=bool(entry.get("mandatory", False)), alternatives=alternatives)
