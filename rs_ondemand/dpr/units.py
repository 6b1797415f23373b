"""`build_unit_list`: the processing units a DPR request runs, from the task table (docs/rs-compatibility.md#units).

The original's semantics and error messages, with these deliberate choices (answers to its open questions,
docs/rs-compatibility.md#open-questions):

- Q1, which version: the original's shape (units keep their task-table `name`, chained origins such as
  `calibration.cal_slcs` are passed through) with the later fixes: a plain list is returned; a dict-shaped `io`
  (`{input[], adfs[], output[]}`) is accepted; unit-level extras such as `regex` are kept; `{external_variable.X}`
  is generic and replaced anywhere in a string (see `variables.substitute`); steps are sorted by `order`, then
  `step_id`; a step's `parameters` are copied to its unit (with variables substituted) when it has any.
- Each pipeline unit takes its origins (and parameters) from its own step. The original let the last step of a
  unit win for every occurrence of that unit; with one step per unit, as in every known table, it is the same.
- Q2, `mandatory` ADFs: `mandatory` is kept on every entry, ADFs included, and an ADF without `alternatives` is
  allowed (the original's flow crashed). The caller skips a non-mandatory ADF it cannot find and fails a mandatory
  one.
- Q3, order of alternatives: `alternatives` are sorted by `order`, stably; an alternative without a numeric
  `order` goes last. The original iterated them in list order.
- Q10: every entry carries its `origin`, so the caller resolves request inputs only for `pipeline_input` ones.

For chains, each unit also gets the identifier EOPF knows it by, `id` = `<unit name>.<step>` (the step's
`step_id`, else its `order`, else its position from 1), and, in pipeline mode, every input another step produces
gets `reference` = `<producer id>.<product>`, which is how an EOPF workflow names another unit's output. The task
tables write that origin `<unit>_<step>.<product>`, `<unit>.<step>.<product>` or `<unit>.<product>` (the unit's
latest step before this one); an origin that names no step of the pipeline, or a product its step does not
produce, is a `TaskTableError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rs_ondemand.dpr.tasktable import TaskTableError, normalise_io
from rs_ondemand.dpr.variables import substitute

ORIGIN_ALIASES = {
    "pipeline.input": "pipeline_input",
    "pipeline.output": "pipeline_output",
    "pipeline.internal": "pipeline_internal",
}
"""Older tables spell the pipeline's own ends with dots (`pipeline.input`)."""

_NOT_MERGED_FROM_UNIT = frozenset({"name", "mode", "mandatory"})
_NOT_MERGED_FROM_IO = frozenset({"name", "mandatory"})


def build_unit_list(
    tasktable: dict[str, Any],
    pipeline: str | None,
    unit: str | None,
    processing_mode: Iterable[str] | None,
    *,
    external_variables: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """The units to run, in order, each `{name, module, input_products, input_adfs, output_products}`.

    Args:
        tasktable: the task table as the DPR service returns it.
        pipeline: a pipeline name; exactly one of `pipeline` and `unit` is given.
        unit: a single unit name (advanced use); its origins come from the first pipeline step that uses it.
        processing_mode: modes requested (`nrt`, `ntc`, ...); entries whose mode is `always` or unset are kept
            whatever the modes, the others only when their mode is requested.
        external_variables: values for `{external_variable.X}`, e.g. `start_datetime`, `end_datetime`,
            `satellite`; datetimes come out as `2023-10-03T11:00:00.000Z`.

    Returns:
        One dict per unit (per step in pipeline mode). Entries are `{name, origin?, mandatory, <unit extras>,
        <io keys>}`; ADFs have no `origin` and keep their `alternatives`, sorted by `order`. A unit also has
        `parameters` when its step has some.

    Raises:
        TaskTableError: the table is malformed, or the pipeline or unit is unknown.
    """
    io_entries = _check_shape(tasktable)
    units_index = {u["name"]: u for u in tasktable["units"] if isinstance(u, dict) and isinstance(u.get("name"), str)}
    if not units_index:
        raise TaskTableError('No valid unit entries found in "units".')
    # Duplicated names: the last description wins, as in the original's index.
    io_index = {e["name"]: e for e in io_entries if isinstance(e, dict) and isinstance(e.get("name"), str)}

    if pipeline and unit:
        raise TaskTableError('Provide either "pipeline" or "unit", not both.')
    if not pipeline and not unit:
        raise TaskTableError('One of "pipeline" or "unit" must be provided.')

    if unit:
        if unit not in units_index:
            available = ", ".join(f"'{name}'" for name in units_index)
            raise TaskTableError(f'Unit "{unit}" not found in "units". Available units: {available}.')
        steps = [_first_step_using(tasktable["pipelines"], unit)]
    else:
        steps = _pipeline_steps(tasktable["pipelines"], str(pipeline))

    modes = set(processing_mode) if processing_mode else set()
    units = [_build_unit(step, units_index, io_index, modes, external_variables) for step in steps]
    ids = [f"{step['unit_name']}.{_step_number(step, index)}" for index, step in enumerate(steps, start=1)]
    for built, unit_id in zip(units, ids, strict=True):
        built["id"] = unit_id
    if len(set(ids)) != len(ids):
        twice = sorted({unit_id for unit_id in ids if ids.count(unit_id) > 1})
        raise TaskTableError(f'Pipeline "{pipeline}": two steps have the same unit and step number: {twice}.')
    if pipeline:
        _link_steps(units, units_index, str(pipeline))
    return units


def unit_class_name(unit: Mapping[str, Any]) -> str:
    """The unit's EOPF processing-unit class: explicit (`processing_unit`), else its name without a `.<step_id>`
    suffix (RS's later unit naming)."""
    if unit.get("processing_unit"):
        return str(unit["processing_unit"])
    head, _, tail = str(unit["name"]).rpartition(".")
    return head if head and tail.isdigit() else str(unit["name"])


def _step_number(step: dict[str, Any], position: int) -> int | float | str:
    for key in ("step_id", "order"):
        value = step.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value) if float(value).is_integer() else value
    return position


def _link_steps(units: list[dict[str, Any]], units_index: dict[str, dict[str, Any]], pipeline: str) -> None:
    """Give every input produced by another step its EOPF `reference` (`<producer id>.<product>`)."""
    for index, unit in enumerate(units):
        for entry in unit["input_products"]:
            origin = entry.get("origin")
            if not isinstance(origin, str) or origin.startswith("pipeline"):
                continue
            head, _, product = origin.rpartition(".")
            producer = _producer(units, index, head)
            where = f'Pipeline "{pipeline}", unit "{unit["id"]}": input "{entry["name"]}" comes from "{origin}"'
            if producer is None:
                known = ", ".join(f'"{u["id"]}"' for u in units)
                raise TaskTableError(f"{where}, but no step of the pipeline is {head!r} (steps: {known}).")
            # Declared by its unit, whatever the requested modes (EOPF tells at run time what a unit returns).
            declared = units_index[producer["name"]].get("output_products")
            made = [o.get("name") for o in declared if isinstance(o, dict)] if isinstance(declared, list) else []
            if product not in made:
                raise TaskTableError(f'{where}, but step "{producer["id"]}" produces only {made}.')
            entry["reference"] = f"{producer['id']}.{product}"


def _producer(units: list[dict[str, Any]], consumer: int, head: str) -> dict[str, Any] | None:
    """The step `head` names: `<unit>_<step>` or `<unit>.<step>`, else `<unit>` (its latest step before the
    consumer, or its only one)."""
    for unit in units:
        name, _, step = unit["id"].rpartition(".")
        if head in (unit["id"], f"{name}_{step}"):
            return unit
    same = [unit for unit in units if unit["name"] == head]
    before = [unit for unit in same if units.index(unit) < consumer]
    return before[-1] if before else (same[0] if len(same) == 1 else None)


def _check_shape(tasktable: Any) -> list[Any]:
    """The original's structural checks, in its order; returns `io` as a flat list."""
    if not isinstance(tasktable, dict):
        raise TaskTableError("Task table root must be a JSON object (dict).")
    if not isinstance(tasktable.get("pipelines"), list):
        raise TaskTableError('Missing or invalid "pipelines" list in task table.')
    if not isinstance(tasktable.get("units"), list):
        raise TaskTableError('Missing or invalid "units" list in task table.')
    io_entries = normalise_io(tasktable.get("io"))
    if io_entries is None:
        raise TaskTableError('Missing or invalid "io" list in task table.')
    return io_entries


def _pipeline_steps(pipelines: list[Any], pipeline: str) -> list[dict[str, Any]]:
    found = next((p for p in pipelines if isinstance(p, dict) and p.get("name") == pipeline), None)
    if found is None:
        names = [p["name"] for p in pipelines if isinstance(p, dict) and p.get("name")]
        available = ", ".join(f'"{name}"' for name in names) if names else '"<none>"'
        raise TaskTableError(f'Pipeline "{pipeline}" not found. Available pipelines: {available}')
    steps = found.get("steps")
    if not isinstance(steps, list) or not steps:
        raise TaskTableError(f'Pipeline "{pipeline}" has no steps.')
    valid = [s for s in steps if isinstance(s, dict) and isinstance(s.get("unit_name"), str)]
    if not valid:
        raise TaskTableError(f'Pipeline "{pipeline}" steps do not contain valid "unit_name" entries.')
    # Older tables order steps with `order`, newer ones with `step_id`; sorted() is stable.
    return sorted(valid, key=lambda s: (_number(s.get("order")), _number(s.get("step_id"))))


def _first_step_using(pipelines: list[Any], unit: str) -> dict[str, Any]:
    """Unit mode: the first step of any pipeline that runs `unit` gives its origins (the original's behaviour)."""
    for p in pipelines:
        if not isinstance(p, dict) or not isinstance(p.get("steps"), list):
            continue
        for step in p["steps"]:
            if isinstance(step, dict) and step.get("unit_name") == unit:
                return step
    raise TaskTableError(f'No pipeline step found for unit "{unit}" to derive origins.')


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _build_unit(
    step: dict[str, Any],
    units_index: dict[str, dict[str, Any]],
    io_index: dict[str, dict[str, Any]],
    modes: set[str],
    external_variables: Mapping[str, Any],
) -> dict[str, Any]:
    name = step["unit_name"]
    definition = units_index.get(name)
    if definition is None:
        raise TaskTableError(f'Unit "{name}" not found in "units".')
    module = definition.get("module")
    if not isinstance(module, str) or not module:
        raise TaskTableError(f'Unit "{name}" is missing a valid "module" string.')

    def entries(kind: str, origins: Any) -> list[dict[str, Any]]:
        items = definition.get(kind) or []
        if not isinstance(items, list):
            raise TaskTableError(f'Unit "{name}": "{kind}" must be a list.')
        built = [_build_entry(item, io_index, modes, name, origins) for item in items]
        return [substitute(entry, external_variables) for entry in built if entry is not None]

    out: dict[str, Any] = {
        "name": name,
        "module": module,
        "input_products": entries("input_products", _mapping(step.get("input_products"))),
        "input_adfs": entries("input_adfs", None),
        "output_products": entries("output_products", _mapping(step.get("output_products"))),
    }
    if isinstance(step.get("parameters"), dict) and step["parameters"]:
        out["parameters"] = substitute(step["parameters"], external_variables)
    return out


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _build_entry(
    item: Any,
    io_index: dict[str, dict[str, Any]],
    modes: set[str],
    unit_name: str,
    origins: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """One input/ADF/output entry, or None when the mode filter drops it (`origins` is None for ADFs)."""
    if not isinstance(item, dict) or not item.get("name"):
        return None
    name = item["name"]
    mode = item.get("mode")
    if mode is not None and mode != "always" and not (isinstance(mode, str) and mode in modes):
        return None

    out: dict[str, Any] = {"name": name}
    if origins is not None and isinstance(origins.get(name), str):
        out["origin"] = ORIGIN_ALIASES.get(origins[name], origins[name])
    if "mandatory" not in item:
        raise TaskTableError(f'Missing "mandatory" for item "{name}" in unit "{unit_name}".')
    out["mandatory"] = bool(item["mandatory"])
    # Unit-level extras (`regex`, `apply_eoqc`, ...) are kept, as in later versions; they win over `io` keys.
    out.update((k, v) for k, v in item.items() if k not in _NOT_MERGED_FROM_UNIT)
    out.update((k, v) for k, v in io_index.get(name, {}).items() if k not in _NOT_MERGED_FROM_IO and k not in out)
    if isinstance(out.get("alternatives"), list):
        out["alternatives"] = sorted(out["alternatives"], key=_alternative_order)
    return out


def _alternative_order(alternative: Any) -> float:
    order = alternative.get("order") if isinstance(alternative, dict) else None
    return float(order) if isinstance(order, int | float) and not isinstance(order, bool) else float("inf")
