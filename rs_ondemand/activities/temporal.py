"""Temporal as an outside system: requests a workflow makes of the server about itself."""

from __future__ import annotations

from temporalio import activity

from rs_ondemand.models.operator import CancelRequest


class TemporalActivities:
    """Activities whose outside system is the Temporal service."""

    @activity.defn
    async def request_cancellation(self, request: CancelRequest) -> None:
        """Ask the server to cancel a workflow: the `cancel` signal then *is* a Temporal cancellation, with
        the same cleanup as `temporal workflow cancel` or the UI's button (a workflow cannot cancel itself)."""
        await activity.client().get_workflow_handle(request.workflow_id).cancel(reason=request.reason)
