"""RS task tables, requests and payloads (copies of RS's own reference files, in tests/dpr/data), read through one
helper; a minimal table and the unit list of a table with fixed external variables."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rs_ondemand.dpr import build_unit_list

DATA_DIR = Path(__file__).parents[1] / "dpr" / "data"

RS_TASKTABLES = (
    "TaskTable_MOCKUP_generated_by_rs_python_v1.json",
    "TaskTable_S1_L0_generated_by_rs_python_v1.json",
    "tasktable_mockup_io_dict.json",
    "tasktable-s1-l0.json",  # the 2.0 draft: `io` as an object, step `parameters`
)


def load(name: str) -> Any:
    """The parsed JSON file `name` from tests/dpr/data."""
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


def s1_l0_request_variables() -> dict[str, Any]:
    """External variables of the reference S1 L0 request (parameter-call-s1-l0.json)."""
    call = load("parameter-call-s1-l0.json")
    return {key: call[key] for key in ("start_datetime", "end_datetime", "satellite")}


UNIT_VARIABLES = {
    "start_datetime": datetime(2023, 10, 3, 11, tzinfo=UTC),
    "end_datetime": datetime(2025, 10, 3, 11, tzinfo=UTC),
    "satellite": "S1A",
}


def minimal_tasktable(**overrides: Any) -> dict[str, Any]:
    """A minimal valid table: pipeline p1 runs u1; u2 is in no pipeline."""
    tasktable: dict[str, Any] = {
        "pipelines": [
            {
                "name": "p1",
                "steps": [{"unit_name": "u1", "order": 1, "input_products": {}, "output_products": {}}],
            },
            {"name": "p2", "steps": [{"unit_name": "u1", "order": 1}]},
        ],
        "units": [
            {"name": "u1", "module": "mod.u1", "input_products": [], "input_adfs": [], "output_products": []},
            {"name": "u2", "module": "mod.u2", "input_products": [], "input_adfs": [], "output_products": []},
        ],
        "io": [],
    }
    tasktable.update(overrides)
    return tasktable


def unit_list(tasktable: Any, pipeline: str | None = "p1", unit: str | None = None, modes: Any = None) -> list[Any]:
    """`build_unit_list` with `UNIT_VARIABLES`."""
    return build_unit_list(tasktable, pipeline, unit, modes, external_variables=UNIT_VARIABLES)
