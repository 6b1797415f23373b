"""How every request ends: its body runs; on a failure or a cancel its cleanup runs and the state settles."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.activities.catalog import CatalogActivities
    from rs_ondemand.models.progress import State
    from rs_ondemand.models.staging import RemoveCollectionsInput
    from rs_ondemand.workflows import _options
    from rs_ondemand.workflows._failures import is_cancellation, operator_error
    from rs_ondemand.workflows._operator import OperatorControl

REMOVE_EMPTY_COLLECTIONS = "remove-empty-collections"
"""Patch id: requests that failed or were cancelled remove the empty collections they created (histories of
requests that ended before this did not)."""


def request_id() -> str:
    """The request this workflow works for: the workflow at the top of its tree."""
    root = workflow.info().root
    return root.workflow_id if root is not None else workflow.info().workflow_id


async def remove_empty_collections(owner_id: str, collections: Iterable[str]) -> None:
    """After the request failed or was cancelled: the catalog collections it created that are still empty go
    (the activity checks both; a collection that existed before, or holds anyone's items, stays).

    Only the request itself removes them, as it ends: its children (which create them) have all ended by then,
    while a child's sibling might still publish into one."""
    wanted = list(dict.fromkeys(collections))
    if not wanted or workflow.info().parent is not None or not workflow.patched(REMOVE_EMPTY_COLLECTIONS):
        return
    await workflow.execute_activity_method(
        CatalogActivities.remove_empty_collections,
        RemoveCollectionsInput(owner_id=owner_id, collections=wanted, request_id=request_id()),
        summary="remove the empty collections the request created",
        **_options.CLEANUP,
    )


async def run_request[T](
    control: OperatorControl,
    what: str,
    body: Awaitable[T],
    *,
    clean_up: Callable[[], Awaitable[None]] | None = None,
    completed: Callable[[], str] | None = lambda: "completed",
    settled: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """`body`'s result, with the state `completed` (`completed=None`: the state is left as it is, for a run that
    continues as new). On a failure or a cancel: `clean_up` runs (what the request
    wrote and nobody will use), then the state settles (`failed` with a one-line error naming `what`, or
    `cancelled`) and the failure is raised as a non-retryable error of the original type (a cancel as itself).
    `settled` runs once the final state is set either way (a child reports it to its parent).

    A request cancelled while it published (`OperatorControl._step(publishes=True)`) may still complete: its
    state then says the cancel came too late."""
    try:
        result = await body
    # Not `finally`/`BaseException`: a workflow evicted from the cache must not schedule cleanup.
    except (Exception, asyncio.CancelledError) as err:
        if clean_up is not None:
            await clean_up()
        failure = _settle(control, err, what)
        if settled is not None:
            await settled()
        if failure is None:
            raise
        raise failure from err
    if completed is not None:
        done = completed()
        if workflow.cancellation_reason() is not None:
            # A cancel arrived while a publication ran: it finished, and nothing was left to stop.
            done += " (a cancel was requested after publication had started: it came too late)"
        control._set_state(State.COMPLETED, done)
    if settled is not None:
        await settled()
    return result


def _settle(control: OperatorControl, err: BaseException, what: str) -> ApplicationError | None:
    """Record how a request ended badly; returns the failure to raise (None for a cancellation)."""
    if is_cancellation(err):
        control._set_state(State.CANCELLED)
        return None
    failure = operator_error(f"{what} failed", err)
    control._failure = failure.message
    control._set_state(State.FAILED)
    return failure
