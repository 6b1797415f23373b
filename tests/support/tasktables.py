"""RS task tables, requests and payloads (copies of RS's own reference files, in tests/dpr/data), read through one
helper."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
