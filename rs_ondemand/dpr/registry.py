"""Task tables by processor name, read from the JSON files shipped in `rs_ondemand/dpr/tasktables/`."""

from __future__ import annotations

import json
import os
from enum import Enum
from pathlib import Path
from typing import Any

from rs_ondemand.dpr.tasktable import TaskTableError

TASKTABLES_DIR = Path(__file__).with_name("tasktables")
"""One `<processor_name>.json` per processor; any file dropped here is picked up, no code change needed."""

DEMO_PROCESSOR = "demo"
"""Our own demo processor: its task table goes to `tasktables/demo.json` (written with that processor)."""


class UnknownProcessorError(TaskTableError):
    """No task table is shipped for the requested processor."""

    def __init__(self, name: str, available: list[str]) -> None:
        listed = ", ".join(f'"{known}"' for known in available) or '"<none>"'
        super().__init__(f'Unknown processor "{name}". Available processors: {listed}.')


def available_processors() -> list[str]:
    """Processor names with a shipped task table, sorted."""
    return sorted(path.stem for path in TASKTABLES_DIR.glob("*.json"))


def get_tasktable(processor_name: str | Enum) -> dict[str, Any]:
    """A fresh copy of the task table of `processor_name` (a `DprProcessor` enum member or its value).

    Raises:
        UnknownProcessorError: no `<processor_name>.json` is shipped.
        TaskTableError: the shipped file is not a JSON object.
    """
    name = str(processor_name.value if isinstance(processor_name, Enum) else processor_name)
    available = available_processors()
    # Looked up in the listing, never joined into a path: a name cannot reach outside the folder.
    if name not in available:
        raise UnknownProcessorError(name, available)
    return load_tasktable_file(TASKTABLES_DIR / f"{name}.json")


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
