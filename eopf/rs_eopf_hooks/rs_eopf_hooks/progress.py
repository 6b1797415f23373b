"""EOPF workflow callback that appends each workflow event to a JSON-lines file the orchestrator follows."""

from __future__ import annotations

import json
import os
import time
from typing import Any

# Metadata values kept in an event: plain JSON scalars and lists of them. Exception objects and anything
# bulky stay out; their type and message come as strings (`exception_type`, `exception_message`).
_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list | tuple) and all(isinstance(item, _SCALARS) for item in value):
        return list(value)
    return None


def _trace_id() -> str | None:
    """The trace this event belongs to (see `rs_eopf_hooks.tracing`); None when the run is not traced."""
    try:
        from rs_eopf_hooks.tracing import current_trace_id
    except ImportError:  # pragma: no cover - opentelemetry comes with eopf
        return None
    return current_trace_id()


def event_record(context: Any) -> dict[str, Any]:
    """The JSON-safe summary of one `WorkflowCallbackContext`."""
    plan = context.plan
    record: dict[str, Any] = {
        "time": time.time(),
        "event": context.event,
        "unit": None if context.unit is None else str(context.unit.identifier),
        "unit_index": plan.punits_indices.get(context.unit.identifier) if context.unit is not None else None,
        "units_total": len(plan.workflow),
    }
    if trace_id := _trace_id():
        record["trace_id"] = trace_id
    for key, value in context.metadata.items():
        plain = _plain(value)
        if plain is not None:
            record[str(key)] = plain
    return record


def record_progress(context: Any, path: str) -> None:
    """Append the event to `path` (one JSON object per line), flushed at once so a follower sees it.

    Registered in the payload's `workflow_callbacks` as
    `{module: rs_eopf_hooks.progress, function: record_progress, parameters: {path: ...}}`.
    """
    line = json.dumps(event_record(context), separators=(",", ":"), default=str) + "\n"
    # One write of one line in append mode: a concurrent reader sees whole lines only.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
