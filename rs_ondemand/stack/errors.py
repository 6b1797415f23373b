"""The one error the stack launcher raises, with an optional quoted log tail."""

from __future__ import annotations

from pathlib import Path


class StackError(Exception):
    """A service of the embedded stack could not be started, checked or stopped.

    Args:
        summary: One line saying what failed.
        log_path: The service log the reader should open, if any.
        log_tail: The last lines of that log, quoted under the summary.
    """

    def __init__(self, summary: str, *, log_path: Path | None = None, log_tail: str = "") -> None:
        self.summary = summary
        self.log_path = log_path
        self.log_tail = log_tail
        text = summary if log_path is None else f"{summary} (log: {log_path})"
        if log_tail:
            text += "\n" + "\n".join(f"  | {line}" for line in log_tail.splitlines())
        super().__init__(text)
