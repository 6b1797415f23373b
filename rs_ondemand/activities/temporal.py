"""Temporal as an outside system: requests a workflow makes of the server (about itself, or to another workflow)."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, FailureError

from rs_ondemand.activities._heartbeat import Heartbeater
from rs_ondemand.models.operator import CancelRequest
from rs_ondemand.models.staging import PublicationRequest, PublishItemsResult
from rs_ondemand.names import COLLECTION_PUBLISHER, PUBLISH_UPDATE, collection_publisher_id

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

        A retried attempt re-attaches to its own publication (same update id) instead of sending a second one.
        Cancelled once the publication is handed over, it still waits for the write, so that the requester's
        cleanup, which follows, sees what was published. A failed write is raised with its own error type."""
        async with Heartbeater(lambda: {"update": request.update_id}):
            while True:
                try:
                    handle = await activity.client().start_update_with_start_workflow(
                        PUBLISH_UPDATE,
                        request,
                        start_workflow_operation=WithStartWorkflowOperation(
                            COLLECTION_PUBLISHER,
                            request.publish.collection,
                            id=collection_publisher_id(request.publish.collection),
                            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                            task_queue=request.task_queue,
                        ),
                        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                        id=request.update_id,
                        result_type=PublishItemsResult,
                    )
                    written = asyncio.ensure_future(handle.result())
                    try:
                        return await asyncio.shield(written)
                    except asyncio.CancelledError:
                        await asyncio.wait([written])
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
