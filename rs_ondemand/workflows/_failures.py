"""Turning activity and child failures into the one-line, typed errors an operator reads."""

from __future__ import annotations

import pydantic
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    FailureError,
    RetryState,
    is_cancelled_exception,
)

INVALID_INPUT: list[type[BaseException]] = [pydantic.ValidationError]
"""Given to every `workflow.defn`: input that fails validation (e.g. from `temporal workflow start --input`)
fails the workflow with pydantic's message, instead of failing its first task over and over."""


def root_cause(err: BaseException) -> BaseException:
    """The error that started a WorkflowFailureError / ChildWorkflowError / ActivityError chain: the first
    application error in it. Its own causes are the Python exceptions it was raised from (a library's error
    under our `QueryError`, say): our message says more than theirs, so the walk stops there."""
    while not isinstance(err, ApplicationError) and isinstance(cause := getattr(err, "cause", None), BaseException):
        err = cause
    return err


def operator_error(context: str, err: BaseException) -> ApplicationError:
    """A non-retryable workflow failure that keeps the original error type and message."""
    cause = root_cause(err)
    kind = cause.type if isinstance(cause, ApplicationError) and cause.type else type(cause).__name__
    message = cause.message if isinstance(cause, FailureError) else str(cause)
    return ApplicationError(f"{context}: {message}", type=kind, non_retryable=True)


def is_cancellation(err: BaseException) -> bool:
    # A cancel arrives as asyncio.CancelledError or wrapped in an ActivityError/ChildWorkflowError: a broad
    # `except ActivityError` must not mistake it for a failure.
    return is_cancelled_exception(err)


def ended_after_cancel(err: BaseException) -> bool:
    """Whether an activity we asked to cancel ended with a failure instead of a cancellation: its worker died
    (heartbeat timeout) or its cleanup raised. The server stops retrying it for that reason (retry state
    CANCEL_REQUESTED): for the workflow it is a cancellation, never a failure worth an operator's retry."""
    return isinstance(err, ActivityError) and err.retry_state == RetryState.CANCEL_REQUESTED


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
