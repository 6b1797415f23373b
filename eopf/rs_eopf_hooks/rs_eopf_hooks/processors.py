"""`python -m rs_eopf_hooks.processors`: which DPR processors this EOPF environment can run, with their task tables.

Reads one JSON object on stdin, `{"candidates": {<processor>: [[<module>, <unit class>], ...]}}` (the units of the
task tables the orchestrator ships), and prints one JSON object on the last line of its output:
`{<processor>: {"units": {"<module>.<class>": <why it cannot be imported> | null}, "tasktable": {...} | null,
"tasktable_error": <why not> | null, "entry_point": "<module>:<class>" | null}}`.

A processor installed in this environment makes itself known with an entry point of the group
`rs_ondemand.processors`, `<processor name> = "<module>:<unit class>"`: it is listed even when the orchestrator
ships no task table for it. Its task table is what its unit class gives through EOPF's own means,
`get_tasktable_description()` (what `eopf trigger tasktable <module> <class>` prints).
"""

from __future__ import annotations

import importlib
import json
import sys
from importlib.metadata import entry_points
from typing import Any

GROUP = "rs_ondemand.processors"


def unit_class(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


def import_error(module: str, name: str) -> str | None:
    try:
        unit_class(module, name)
    except Exception as err:  # any import-time failure makes the unit unusable: say which
        return f"{type(err).__name__}: {err}"
    return None


def served_tasktable(module: str, name: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return dict(unit_class(module, name).get_tasktable_description()), None
    except Exception as err:
        return None, f"{type(err).__name__}: {err}"


def units_of(tasktable: dict[str, Any]) -> list[tuple[str, str]]:
    units = tasktable.get("units") if isinstance(tasktable, dict) else None
    found = []
    for unit in units if isinstance(units, list) else []:
        if isinstance(unit, dict) and isinstance(unit.get("module"), str) and isinstance(unit.get("name"), str):
            head, _, tail = unit["name"].rpartition(".")
            found.append((unit["module"], unit.get("processing_unit") or (head if tail.isdigit() else unit["name"])))
    return found


def describe(units: list[tuple[str, str]], entry_point: str | None) -> dict[str, Any]:
    described: dict[str, Any] = {"entry_point": entry_point, "tasktable": None, "tasktable_error": None}
    if entry_point is not None:
        module, _, name = entry_point.partition(":")
        described["tasktable"], described["tasktable_error"] = served_tasktable(module, name)
        units = units or units_of(described["tasktable"] or {})
    elif units:
        described["tasktable"], described["tasktable_error"] = served_tasktable(*units[0])
    described["units"] = {f"{module}.{name}": import_error(module, name) for module, name in units}
    return described


def main() -> None:
    request = json.loads(sys.stdin.read() or "{}")
    candidates = {name: [tuple(unit) for unit in units] for name, units in request.get("candidates", {}).items()}
    declared = {point.name: point.value for point in entry_points(group=GROUP)}
    result = {
        name: describe(list(candidates.get(name, [])), declared.get(name))
        for name in sorted(set(candidates) | set(declared))
    }
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
