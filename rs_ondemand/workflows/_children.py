"""What a parent workflow knows of its children: the progress they report, and `retry` passed on to them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.models.operator import RetrySignal
    from rs_ondemand.models.progress import Progress, State
    from rs_ondemand.models.staging import StagingReport
    from rs_ondemand.names import RETRY_SIGNAL, STAGING_PROGRESS_SIGNAL

if TYPE_CHECKING:
    from rs_ondemand.workflows._operator import OperatorControl


class ChildProgress:
    """The latest progress each child reported (by signal), by child workflow id.

    A child waiting for an operator makes its parent show `waiting_for_operator`, and the parent's `retry` goes
    on to every child that waits. A child's completion is its last word: a report arriving after it is ignored.
    """

    def __init__(self) -> None:
        self._latest: dict[str, Progress] = {}

    def take(self, child_id: str, progress: Progress) -> bool:
        """Record a child's report; False (and nothing recorded) when that child already completed."""
        known = self._latest.get(child_id)
        if known is not None and known.state == State.COMPLETED:
            return False
        self._latest[child_id] = progress
        return True

    def reports(self) -> list[Progress]:
        return list(self._latest.values())

    def waiting(self) -> bool:
        return any(progress.state == State.WAITING_FOR_OPERATOR for progress in self._latest.values())

    def waiting_steps(self) -> list[str]:
        """The steps the children wait on, as each lists them (names `retry {"step": …}` takes)."""
        return [step for progress in self._latest.values() for step in progress.waiting_steps]

    def last_error(self) -> str | None:
        """The unresolved error of the last child that has one."""
        return next((p.last_error for p in reversed(self._latest.values()) if p.last_error), None)

    def completed(self) -> int:
        return sum(1 for progress in self._latest.values() if progress.state == State.COMPLETED)

    async def forward_retry(self, request: RetrySignal) -> None:
        waiting = [child for child, progress in self._latest.items() if progress.state == State.WAITING_FOR_OPERATOR]
        for child_id in waiting:
            await workflow.get_external_workflow_handle(child_id).signal(RETRY_SIGNAL, request)


class SummedChildren:
    """Takes the `staging_progress` reports of a workflow's children (registering the signal's handler): each is
    kept in `control._children`, and the `fields` of `control._progress` show `base` plus the children's sums.

    `base` holds what children of earlier runs did (a workflow that continued as new); `only`, when set, is the
    set of children whose reports count (a report of an earlier run's child arriving late is ignored).
    """

    def __init__(self, control: OperatorControl, fields: tuple[str, ...]) -> None:
        self.control = control
        self.fields = fields
        self.base = Progress()
        self.only: set[str] | None = None
        # Registered while the workflow is constructed, before any signal is delivered: the same as a handler
        # declared on the workflow class.
        workflow.set_signal_handler(STAGING_PROGRESS_SIGNAL, self._take)

    def _take(self, report: StagingReport) -> None:
        if self.only is not None and report.child_id not in self.only:
            return
        control = self.control
        control._children.take(report.child_id, report.progress)
        children = control._children.reports()
        for name in self.fields:
            setattr(control._progress, name, getattr(self.base, name) + sum(getattr(c, name) for c in children))
        control._show_state()
