"""What every workflow offers operators: `progress`, `retry`, `cancel`, RsState, and waiting after a failed step."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.activities.temporal import TemporalActivities
    from rs_ondemand.models.operator import CancelRequest, CancelSignal, RequestOptions, RetrySignal
    from rs_ondemand.models.progress import Progress, State
    from rs_ondemand.names import CANCEL_SIGNAL, PROGRESS_QUERY, RETRY_SIGNAL
    from rs_ondemand.search_attributes import RS_STATE
    from rs_ondemand.workflows import _options
    from rs_ondemand.workflows._children import ChildProgress
    from rs_ondemand.workflows._failures import ended_after_cancel, is_cancellation, operator_error

T = TypeVar("T")


def is_final(err: BaseException) -> bool:
    """Whether no retry can help: a non-retryable error (bad input, unknown session, corrupt data, a child
    that already gave up). Anything else that outlived its retry policy is worth an operator's `retry`."""
    if isinstance(err, ChildWorkflowError):
        return True  # children wait for operators themselves; when one fails, it is final
    # The whole chain counts: a final ApplicationError carries the Python error it came from as its cause.
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ApplicationError) and cause.non_retryable:
            return True
        cause = getattr(cause, "cause", None)
    return False


class OperatorControl:
    """Base of every workflow: the `progress` query, the `retry` and `cancel` signals, the RsState search
    attribute, and `_step`, which runs a step and, once its retry policy is spent on a retryable cause, waits
    for an operator instead of failing (`waiting_for_operator`), up to the request's wait limit."""

    def __init__(self) -> None:
        self._progress = Progress()
        self._state = self._progress.state
        self._options = RequestOptions()
        self._waiting: dict[str, str] = {}
        """Steps waiting for an operator → their error."""
        self._retry_generation = 0
        self._retry_step: str | None = None
        self._children = ChildProgress()
        """Progress of the children that report to this workflow (none for most)."""

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> Progress:
        return self._progress

    @workflow.signal(name=RETRY_SIGNAL)
    async def retry(self, request: RetrySignal | None = None) -> None:
        """Re-run the failed step(s); what was done before them is not done again."""
        request = request or RetrySignal()
        self._retry_generation += 1
        self._retry_step = request.step
        await self._children.forward_retry(request)

    @workflow.signal(name=CANCEL_SIGNAL)
    async def cancel(self, request: CancelSignal | None = None) -> None:
        """Stop with cleanup: asks the server to cancel this workflow, so it is the same as a Temporal cancel."""
        reason = (request or CancelSignal()).reason or "cancel signal"
        await workflow.execute_local_activity_method(
            TemporalActivities.request_cancellation,
            CancelRequest(workflow_id=workflow.info().workflow_id, reason=reason),
            start_to_close_timeout=timedelta(seconds=30),
        )

    def _with_attempts(self, preset: dict[str, Any]) -> dict[str, Any]:
        """Activity options of `preset` whose retries stop after the request's `step_attempts`, when the step
        waits for an operator."""
        return _options.with_attempts(preset, self._options.step_attempts)

    async def _on_state_change(self) -> None:
        """Hook: called after the shown state changed (children report it to their parent)."""

    def _set_state(self, state: State, step: str | None = None) -> None:
        self._state = state
        if step is not None:
            self._progress.step = step
        self._show_state()

    def _show_state(self) -> None:
        shown = State.WAITING_FOR_OPERATOR if self._waiting or self._children.waiting() else self._state
        if shown != self._progress.state:
            self._progress.state = shown
            workflow.upsert_search_attributes([RS_STATE.value_set(shown.value)])

    async def _step(self, name: str, run: Callable[[], Awaitable[T]]) -> T:
        """Run a step; a failure that outlived its retry policy waits for `retry` (then runs it again)."""
        while True:
            try:
                return await run()
            except (ActivityError, ChildWorkflowError) as err:
                if ended_after_cancel(err):
                    # The step itself was cancelled (by the request's cancel, or by a sibling's final failure).
                    raise asyncio.CancelledError(f"{name}: {err.message}") from err
                if is_cancellation(err) or is_final(err):
                    raise
                await self._wait_for_operator(name, err)

    async def _wait_for_operator(self, step: str, err: BaseException) -> None:
        message = operator_error(step, err).message
        generation = self._retry_generation
        self._waiting[step] = message
        self._progress.last_error = message
        self._show_state()
        await self._on_state_change()
        workflow.logger.warning("waiting for an operator: %s", message)

        def retried() -> bool:
            return self._retry_generation > generation and self._retry_step in (None, step)

        # Not a `finally`: when the workflow is torn down while waiting (evicted, or ended by another task) the
        # coroutine is closed outside the workflow's event loop, where workflow state may not be touched.
        try:
            await workflow.wait_condition(retried, timeout=timedelta(seconds=self._options.operator_wait_limit_s))
        except TimeoutError:
            self._stop_waiting(step)
            raise ApplicationError(
                f"{message} (no operator retried it within {self._options.operator_wait_limit_s} s)",
                type="OperatorWaitExpired",
                non_retryable=True,
            ) from err
        except asyncio.CancelledError:
            self._stop_waiting(step)
            raise
        self._stop_waiting(step)
        await self._on_state_change()

    def _stop_waiting(self, step: str) -> None:
        del self._waiting[step]
        self._show_state()
