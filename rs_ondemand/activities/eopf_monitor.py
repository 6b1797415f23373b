"""What an EOPF run says while it runs: its output (the tail kept for errors, EOPF's progress lines and execution
report) and the progress events of our workflow callback, both files of the run's folder that grow as it runs.

It also tells a payload EOPF refuses before running any unit (the same payload is refused again: the request
fails at once) from a failure an operator's retry may fix (data, cluster)."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rs_ondemand.models.processor_run import ProcessorProgress, WrittenProduct

PROGRESS_NAME = "progress.jsonl"
OUTPUT_NAME = "output.log"
"""In the run's folder: EOPF's stdout and stderr, together."""
REPORT_MARKER = '"message":"Workflow execution report"'
"""EOPF logs its execution report as one JSON object on one line (`WorkflowExecutionReport.format`)."""
PROGRESS_LINE = re.compile(r"Workflow progress: (\d+)%")

PAYLOAD_REFUSALS = re.compile(
    "|".join(
        (
            # eopf.triggering.runner: the payload's external modules (our units are among them)
            r"Module \S+ not found",
            r"Import folder \S+ does not exist",
            # eopf.triggering.parsers: the workflow (importing units, their mandatory inputs and ADFs), io, hooks
            "Error on payload",
            "Error while importing module",
            r"Class \S+ not found in module",
            "Processor version mismatch",
            "Missing input for unit",
            "Missing input adf for unit",
            "Invalid workflow active expression",
            r"Duplicated id\(s\) in io\.",
            "engine param is mandatory",
            "is not able to write",
            "Invalid writer configuration for output",
            "Error while building context manager",
            "Error while importing workflow callback",
            # eopf.triggering.workflow_plan / workflow_validation: the chain's graph and its io references
            "Workflow must contain at least one active processing unit",
            "Twice the same unit identifier",
            "Workflow has cyclic dependencies",
            "Missing mandatory input for",
            "Missing mandatory adf for",
            "but is not available in I/O configuration",
            "but is not available in I/O adf configuration",
            "Missing EOConfiguration params to run the TaskTable",
            # eopf.common.env_utils: a ${VAR} of the payload that the EOPF process's environment does not have
            "Unresolved env vars",
        )
    )
)
"""EOPF's messages for a payload it refuses before running any unit (EOPF 3.0's own wording, from its triggering
code): the same payload is refused again, whatever an operator waits for. Failures on data (an input that cannot
be opened, a unit's own error) and on the cluster are not in the list: they may pass on a retry."""


class _GrowingFile:
    """The lines appended to a file since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def new_lines(self, *, final: bool = False) -> Iterator[bytes]:
        """Whole lines only (the last may still be arriving); `final`: the writer is gone, the rest too."""
        with contextlib.suppress(FileNotFoundError), self.path.open("rb") as file:
            file.seek(self._offset)
            chunk = file.read()
            whole = chunk if final else chunk[: chunk.rfind(b"\n") + 1]
            self._offset += len(whole)
            yield from whole.splitlines()


class RunMonitor:
    """Follows one EOPF run from the files of its folder: its output and its progress events."""

    def __init__(self, workdir: Path, tail_lines: int) -> None:
        self._output = _GrowingFile(workdir / OUTPUT_NAME)
        self._events_file = _GrowingFile(workdir / PROGRESS_NAME)
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self.report: dict[str, Any] | None = None
        self.progress = ProcessorProgress()
        self.products: dict[str, WrittenProduct] = {}
        self._started = time.monotonic()
        self._units_done: set[str] = set()
        self._events: set[str] = set()

    def poll(self, *, final: bool = False) -> ProcessorProgress:
        """Read what the run wrote since the last poll (`final`: it has ended); returns the progress so far."""
        for line in self._output.new_lines(final=final):
            self._output_line(line.decode(errors="replace").rstrip())
        for line in self._events_file.new_lines(final=final):
            with contextlib.suppress(ValueError):
                self._apply(json.loads(line))
        self.progress.elapsed_s = round(time.monotonic() - self._started, 1)
        return self.progress

    def _output_line(self, text: str) -> None:
        self.tail.append(text)
        if progress := PROGRESS_LINE.search(text):
            self.progress.percent = int(progress.group(1))
        if REPORT_MARKER in text:
            with contextlib.suppress(ValueError):
                self.report = json.loads(text[text.index("{") :])

    def _apply(self, event: dict[str, Any]) -> None:
        kind = str(event.get("event", ""))
        self._events.add(kind)
        self.progress.event = kind
        self.progress.units_total = int(event.get("units_total") or self.progress.units_total)
        if event.get("unit"):
            self.progress.unit = str(event["unit"])
        if event.get("trace_id"):
            self.progress.trace_id = str(event["trace_id"])
        if kind == "after_unit" and event.get("unit"):
            self._units_done.add(str(event["unit"]))
            self.progress.units_done = len(self._units_done)
        if kind in ("after_output_write_submit", "after_output_write_flush") and event.get("product_path"):
            output_id = str(event.get("output_id"))
            self.products[str(event["product_path"])] = WrittenProduct(
                output_id=output_id, path=str(event["product_path"]), unit=event.get("unit")
            )
            self.progress.outputs_written = len(self.products)

    def written_products(self) -> list[WrittenProduct]:
        """From EOPF's report when it printed one, else from the callback events."""
        if self.report and self.report.get("written_products"):
            return [
                WrittenProduct(output_id=str(p.get("product_id")), path=str(p["path"]), unit=p.get("unit"))
                for p in self.report["written_products"]
            ]
        return list(self.products.values())

    def refusal(self) -> str | None:
        """EOPF's line refusing the payload, when it refused it before any unit started; else None."""
        if self.progress.units_done or any(event == "before_unit" for event in self._events):
            return None
        # The last such line: EOPF logs the error, then its command line prints it alone ("Error: ...").
        lines = reversed(self.tail)
        return next((line for line in lines if PAYLOAD_REFUSALS.search(line)), None)

    def failure_reason(self) -> str:
        exception = (self.report or {}).get("exception") or {}
        if exception:
            return f"{exception.get('type')}: {exception.get('message')}"
        errors = [line for line in self.tail if "Error" in line or "ERROR" in line]
        return errors[-1] if errors else "no error message (see the output below)"
