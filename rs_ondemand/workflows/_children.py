"""What a parent workflow knows of its children: the progress they report, and `retry` passed on to them."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.models.operator import RetrySignal
    from rs_ondemand.models.progress import Progress, State
    from rs_ondemand.names import RETRY_SIGNAL


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
