"""Temporal as an outside system: requests a workflow makes of the server (about itself, or to another workflow)."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, FailureError

from rs_ondemand.activities._heartbeat import Heartbeater
from rs_ondemand.models.operator import CancelRequest
from rs_ondemand.models.publication import (
    DiscardItemsResult,
    DiscardRequest,
    PublicationRequest,
    PublisherUpdate,
    PublishItemsResult,
)
from rs_ondemand.names import COLLECTION_PUBLISHER, DISCARD_UPDATE, PUBLISH_UPDATE, collection_publisher_id

PUBLISHER_CLOSING = "PublisherClosing"
"""The error type with which an ending publisher run refuses a publication (workflows/collection_publisher.py)."""
RESEND_AFTER_S = 0.5


class TemporalActivities:
    """Activities whose outside system is the Temporal service."""

    @activity.defn
    async def request_cancellation(self, request: CancelRequest) -> None:
        """Ask the server to cancel a workflow: the `cancel` signal then *is* a Temporal cancellation, with
        the same cleanup as `temporal workflow cancel` or the UI's button (a workflow cannot cancel itself)."""
        await activity.client().get_workflow_handle(request.workflow_id).cancel(reason=request.reason)

    @activity.defn
    async def publish_in_collection(self, request: PublicationRequest) -> PublishItemsResult:
        """Hand a batch of verified items to the `CollectionPublisher` of its collection (started if none runs)
        and wait for its write. A workflow cannot update another one: this activity does it for the requester.

        Cancelled once the publication is handed over, it still waits for the write, so that the requester's
        cleanup, which follows, sees what was published."""
        return await _through_publisher(PUBLISH_UPDATE, request, request.publish.collection, PublishItemsResult)

    @activity.defn
    async def discard_in_collection(self, request: DiscardRequest) -> DiscardItemsResult:
        """Have the collection's `CollectionPublisher` remove what a request wrote for items it did not publish,
        between two of its writes: the check that keeps an item another request published (same keys) and the
        deletion then cannot straddle that request's publication."""
        return await _through_publisher(DISCARD_UPDATE, request, request.discard.collection, DiscardItemsResult)


async def _through_publisher[R](update: str, request: PublisherUpdate, collection: str, result_type: type[R]) -> R:
    """Send `update` to the publisher of `collection` (started on `task_queue` if none runs) and wait for its
    result. A retried attempt re-attaches to its own update (same `update_id`) instead of sending a second one;
    a run that is ending refuses it, and it goes to the next run. A failure is raised with its own error type."""
    update_id, task_queue = request.update_id, request.task_queue
    async with Heartbeater(lambda: {"update": update_id}):
        while True:
            try:
                handle = await activity.client().start_update_with_start_workflow(
                    update,
                    request,
                    start_workflow_operation=WithStartWorkflowOperation(
                        COLLECTION_PUBLISHER,
                        collection,
                        id=collection_publisher_id(collection),
                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                        task_queue=task_queue,
                    ),
                    wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                    id=update_id,
                    result_type=result_type,
                )
                done = asyncio.ensure_future(handle.result())
                try:
                    return await asyncio.shield(done)
                except asyncio.CancelledError:
                    await asyncio.wait([done])
                    raise
            except WorkflowUpdateFailedError as failed:
                cause = _application_error(failed)
                if cause is not None and cause.type == PUBLISHER_CLOSING:
                    await asyncio.sleep(RESEND_AFTER_S)
                    continue
                if cause is None:
                    raise
                raise ApplicationError(cause.message, type=cause.type, non_retryable=cause.non_retryable) from None


def _application_error(err: BaseException) -> ApplicationError | None:
    """The first application error in a failure chain (the publisher's activity error, or its refusal)."""
    cause: BaseException | None = err
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause if isinstance(cause, FailureError | WorkflowUpdateFailedError) else None
    return cause
