"""Task tables by processor name: the JSON files shipped in `rs_ondemand/dpr/tasktables/`, and the tables the
processors installed in the EOPF environment serve themselves.

A shipped file wins (it overrides what the processor serves, and stands in for a processor that is not installed:
such a processor can be planned, not run); a processor with no shipped file is known by its own table.
`processor_catalog` merges the two from what the EOPF environment answered (`activities.eopf_env`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from rs_ondemand.dpr.tasktable import TaskTableError
from rs_ondemand.dpr.units import unit_class_name

TASKTABLES_DIR = Path(__file__).with_name("tasktables")
"""One `<processor_name>.json` per processor; any file dropped here is picked up, no code change needed."""

DEMO_PROCESSOR = "demo"
"""Our own demo processor (`eopf/`), whose task table is `tasktables/demo.json`."""


class UnknownProcessorError(TaskTableError):
    """No task table is shipped for the requested processor."""

    def __init__(self, name: str, available: list[str]) -> None:
        listed = ", ".join(f'"{known}"' for known in available) or '"<none>"'
        super().__init__(f'Unknown processor "{name}". Available processors: {listed}.')


def available_processors() -> list[str]:
    """Processor names with a shipped task table, sorted."""
    return sorted(path.stem for path in TASKTABLES_DIR.glob("*.json"))


def get_tasktable(processor_name: str) -> dict[str, Any]:
    """A fresh copy of the task table of `processor_name`.

    Raises:
        UnknownProcessorError: no `<processor_name>.json` is shipped.
        TaskTableError: the shipped file is not a JSON object.
    """
    available = available_processors()
    # Looked up in the listing, never joined into a path: a name cannot reach outside the folder.
    if processor_name not in available:
        raise UnknownProcessorError(processor_name, available)
    return load_tasktable_file(TASKTABLES_DIR / f"{processor_name}.json")


def load_tasktable_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The task table in the JSON file `path` (`rs-ondemand plan dpr --tasktable FILE`).

    Only the JSON and its root type are checked here; `build_unit_list` reports the table's structure with the
    original's messages.

    Raises:
        TaskTableError: the file cannot be read, is not JSON, or its root is not an object.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise TaskTableError(f"Cannot read task table file {os.fspath(path)!r}: {err.strerror or err}") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TaskTableError(f"Task table file {os.fspath(path)!r} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise TaskTableError(f"Task table file {os.fspath(path)!r}: the root must be a JSON object.")
    return data


# --- Processors: the shipped tables and what the EOPF environment has ------------------------------------------


class ProcessorInfo(BaseModel):
    """A processor as `rs-ondemand processors list` shows it."""

    name: str
    source: Literal["registry", "processor"]
    """Where its task table comes from: a shipped file, or the processor itself (through EOPF)."""
    runnable: bool
    """Every unit module of its table imports in the EOPF environment; else it can only be planned."""
    why_not: str | None = None
    units: list[str] = Field(default_factory=list)
    """`<module>.<class>` of its units."""
    served_tasktable: Literal["same", "differs", "none"] = "none"
    """What the processor itself serves through EOPF, compared with the table used."""
    tasktable: dict[str, Any] | None = Field(None, exclude=True)


def unit_classes(tasktable: dict[str, Any]) -> list[tuple[str, str]]:
    """`(module, class)` of every unit of a table."""
    units = tasktable.get("units")
    found = []
    for unit in units if isinstance(units, list) else []:
        if isinstance(unit, dict) and isinstance(unit.get("module"), str) and isinstance(unit.get("name"), str):
            found.append((unit["module"], unit_class_name(unit)))
    return list(dict.fromkeys(found))


def shipped_units() -> dict[str, list[tuple[str, str]]]:
    """The units of every shipped table: what to ask the EOPF environment about."""
    return {name: unit_classes(get_tasktable(name)) for name in available_processors()}


def processor_catalog(found: dict[str, Any] | None) -> dict[str, ProcessorInfo]:
    """Every processor: the shipped ones and those the EOPF environment declares, from its answer `found`
    (`rs_eopf_hooks.processors`; None: there is no EOPF environment)."""
    catalog: dict[str, ProcessorInfo] = {}
    for name in sorted(set(available_processors()) | set(found or {})):
        answer = (found or {}).get(name) or {}
        served = answer.get("tasktable")
        shipped = get_tasktable(name) if name in available_processors() else None
        tasktable = shipped if shipped is not None else served
        units = unit_classes(tasktable) if tasktable else []
        broken = {unit: error for unit, error in (answer.get("units") or {}).items() if error}
        if found is None:
            why_not = "no EOPF environment"
        elif tasktable is None:
            why_not = f"serves no task table ({answer.get('tasktable_error')})"
        elif broken:
            # One line per error: a module's classes fail alike ("No module named ...").
            modules: dict[str, list[str]] = {}
            for unit, error in broken.items():
                modules.setdefault(error, []).append(unit.rpartition(".")[0])
            why_not = "; ".join(f"cannot import {', '.join(dict.fromkeys(m))}: {e}" for e, m in modules.items())
        elif not answer:
            why_not = "not installed in the EOPF environment"
        else:
            why_not = None
        catalog[name] = ProcessorInfo(
            name=name,
            source="registry" if shipped is not None else "processor",
            runnable=why_not is None,
            why_not=why_not,
            units=[f"{module}.{cls}" for module, cls in units],
            served_tasktable="none" if not served else "same" if served == tasktable else "differs",
            tasktable=tasktable,
        )
    return catalog


def tasktable_of(catalog: dict[str, ProcessorInfo], name: str) -> dict[str, Any]:
    """The task table of processor `name` in `catalog`.

    Raises:
        UnknownProcessorError: the catalog has no table for it.
    """
    info = catalog.get(name)
    if info is None or info.tasktable is None:
        raise UnknownProcessorError(name, sorted(n for n, i in catalog.items() if i.tasktable is not None))
    table: dict[str, Any] = json.loads(json.dumps(info.tasktable))  # a copy the caller may change
    return table
