"""What every workflow offers operators: `progress`, `retry`, `cancel`, RsState, and waiting after a failed step."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.activities.temporal import TemporalActivities
    from rs_ondemand.error_text import one_line
    from rs_ondemand.models.operator import CancelRequest, CancelSignal, RequestOptions, RetrySignal
    from rs_ondemand.models.progress import Progress, State
    from rs_ondemand.names import CANCEL_SIGNAL, PROGRESS_QUERY, RETRY_SIGNAL
    from rs_ondemand.search_attributes import RS_STATE
    from rs_ondemand.workflows import _options
    from rs_ondemand.workflows._children import ChildProgress
    from rs_ondemand.workflows._failures import ended_after_cancel, is_cancellation, is_final, operator_error

NO_BODY = RawValue(Payload())
"""A signal sent without a body (`temporal workflow signal --name retry`)."""

MAX_WARNINGS = 50
"""Warnings kept in `progress` (the worker log has every one)."""

DRY_RUN_NO_WAIT = "a dry run does not wait for an operator"


CANCEL_WINS_PATCH = "cancel-wins-over-a-late-completion"
"""Patch id of the rules for a cancel that races a step's end (`OperatorControl._step`): histories recorded
before them replay with the old behaviour."""


def cancel_wins() -> bool:
    """Whether this run follows those rules (always, but for histories recorded before them)."""
    return workflow.patched(CANCEL_WINS_PATCH)


def stop_requested() -> bool:
    """Whether the running code must stop: the request was cancelled (Temporal's cancel, or our `cancel`
    signal, which asks the server for it), or the current task was (a sibling's failure, a timeout)."""
    if not cancel_wins():
        return False
    task = asyncio.current_task()
    return workflow.cancellation_reason() is not None or (task is not None and task.cancelling() > 0)


def stop_if_requested(step: str) -> None:
    """Raise the cancel `stop_requested` tells of (named after the step that stops)."""
    if stop_requested():
        raise asyncio.CancelledError(f"{step}: cancelled")


class OperatorControl:
    """Base of every workflow: the `progress` query, the `retry` and `cancel` signals, the RsState search
    attribute, and `_step`, which runs a step and, once its retry policy is spent on a retryable cause, waits
    for an operator instead of failing (`waiting_for_operator`), up to the request's wait limit.

    A signal whose body is not what it should be (an unknown key, a wrong type) is ignored and reported in
    `progress.warnings` and the worker log."""

    def __init__(self) -> None:
        self._progress = Progress()
        self._state = self._progress.state
        self._options = RequestOptions()
        self._waiting: list[str] = []
        """Names of this workflow's steps waiting for an operator (twice if two steps of one name wait)."""
        self._errors: list[str] = []
        """Errors of this workflow's steps that have not succeeded since, oldest first."""
        self._failure: str | None = None
        """Why the request failed. `progress.last_error` shows it, else the newest step error, else a child's."""
        self._retries: list[str | None] = []
        """The step of every `retry` received (None: every waiting step)."""
        self._children = ChildProgress()
        """Progress of the children that report to this workflow (none for most)."""
        self._waits_for_operator = True
        """False for a dry run: a step that outlived its retries fails the request instead of waiting."""

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> Progress:
        return self._progress

    # Both signals take the raw body and decode it themselves: a body that does not decode is reported, not
    # dropped with only an SDK log line (what a typed parameter would do).
    @workflow.signal(name=RETRY_SIGNAL)
    async def retry(self, body: RawValue = NO_BODY) -> None:
        """Re-run the failed step(s); what was done before them is not done again."""
        request = self._signal_body(RETRY_SIGNAL, body, RetrySignal)
        if request is None:
            return
        self._retries.append(request.step)
        await self._children.forward_retry(request)

    @workflow.signal(name=CANCEL_SIGNAL)
    async def cancel(self, body: RawValue = NO_BODY) -> None:
        """Stop with cleanup: asks the server to cancel this workflow, so it is the same as a Temporal cancel."""
        request = self._signal_body(CANCEL_SIGNAL, body, CancelSignal)
        if request is None:
            return
        await workflow.execute_local_activity_method(
            TemporalActivities.request_cancellation,
            CancelRequest(workflow_id=workflow.info().workflow_id, reason=request.reason or "cancel signal"),
            **_options.CANCEL_REQUEST,
        )

    def _signal_body[M: BaseModel](self, signal: str, body: RawValue, model: type[M]) -> M | None:
        """The signal's body as `model` (no body: its defaults); None, with a warning, when it is not one."""
        try:
            value = None if body is NO_BODY else workflow.payload_converter().from_payload(body.payload)
            return model.model_validate({} if value is None else value)
        except Exception as err:  # not JSON, or not the model: either way the operator must hear of it
            self._warn(f"{signal} signal ignored: {one_line(err, whole='body')}")
            return None

    def _warn(self, message: str) -> None:
        workflow.logger.warning(message)
        if len(self._progress.warnings) < MAX_WARNINGS:
            self._progress.warnings.append(message)

    def _with_attempts(self, preset: dict[str, Any]) -> dict[str, Any]:
        """Activity options of `preset` whose retries stop after the request's `step_attempts`, when the step
        waits for an operator."""
        return _options.with_attempts(preset, self._options.step_attempts)

    async def _on_state_change(self) -> None:
        """Hook: called after a step started or stopped waiting (children report it to their parent)."""

    def _set_state(self, state: State, step: str | None = None) -> None:
        self._state = state
        if step is not None:
            self._progress.step = step
        self._show_state()

    def _replace_error(self, old: str | None, new: str | None) -> None:
        """A step's error `old` (if any) is resolved, or replaced by `new`."""
        if old is not None:
            self._errors.remove(old)
        if new is not None:
            self._errors.append(new)
        self._show_state()

    def _show_state(self) -> None:
        """Bring `progress` up to date with this workflow and its children; RsState follows the shown state."""
        progress, children = self._progress, self._children
        progress.waiting_steps = list(dict.fromkeys(self._waiting + children.waiting_steps()))
        progress.last_error = self._failure or (self._errors[-1] if self._errors else children.last_error())
        shown = State.WAITING_FOR_OPERATOR if self._waiting or children.waiting() else self._state
        if shown != progress.state:
            progress.state = shown
            workflow.upsert_search_attributes([RS_STATE.value_set(shown.value)])

    async def _step[T](self, name: str, run: Callable[[], Awaitable[T]], *, publishes: bool = False) -> T:
        """Run a step; a failure that outlived its retry policy waits for `retry` (then runs it again). Its
        error stays in `progress.last_error` until it succeeds.

        A cancel requested before the step starts, or while it runs, wins even if the step's activity (or child)
        completes anyway (one that finishes its work before it sees the cancel): the step raises the cancel, and
        the request's cleanup removes what it wrote. A step that `publishes` is the exception: once started it
        is shielded from cancels and finishes (else cleanup could remove what the catalog already points at);
        see `_finish_publication`."""
        error: str | None = None
        while True:
            stop_if_requested(name)
            try:
                shielded = publishes and cancel_wins()
                result = await (self._finish_publication(name, run) if shielded else run())
            except (ActivityError, ChildWorkflowError) as err:
                if ended_after_cancel(err):
                    # The step itself was cancelled (by the request's cancel, or by a sibling's final failure).
                    raise asyncio.CancelledError(f"{name}: {err.message}") from err
                if is_cancellation(err) or is_final(err):
                    raise
                failure = operator_error(name, err)
                message = failure.message
                self._replace_error(error, message)
                error = message
                if not self._waits_for_operator:
                    raise ApplicationError(
                        f"{message} ({DRY_RUN_NO_WAIT})", type=failure.type, non_retryable=True
                    ) from err
                stop_if_requested(name)  # a publication that failed after a cancel: nobody is to retry it
                await self._wait_for_operator(name, message, err)
                continue
            if error is not None:
                self._replace_error(error, None)
            if not publishes:
                stop_if_requested(name)  # it completed, but after a cancel: the cancel wins
            return result

    async def _finish_publication[T](self, name: str, run: Callable[[], Awaitable[T]]) -> T:
        """`run()`, which publishes, to its end even if the request (or the task) is cancelled meanwhile: the
        catalog then holds what it published, and the workflow knows it. The cancel is held, not lost: the
        caller records the result, and stops at its next step (`stop_if_requested`) if it has more to do."""
        task = asyncio.ensure_future(run())
        while not task.done():
            try:
                await workflow.wait([task])  # unlike awaiting the task, a cancel of ours does not reach it
            except asyncio.CancelledError:
                continue
        if workflow.cancellation_reason() is not None:
            self._warn(f"cancel requested during {name!r}: it had started, so it finished (the cancel came too late)")
        return task.result()

    async def _wait_for_operator(self, step: str, message: str, err: BaseException) -> None:
        seen = len(self._retries)
        self._waiting.append(step)
        self._show_state()
        await self._on_state_change()
        workflow.logger.warning("waiting for an operator: %s", message)

        def retried() -> bool:
            return any(retry in (None, step) for retry in self._retries[seen:])

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
        self._waiting.remove(step)
        self._show_state()
