"""`OnDemandCadipStaging`: find one CADIP session and stage it (rs-reference.md §2)."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.activities.stations import StationActivities
    from rs_ondemand.activities.storage import StorageActivities
    from rs_ondemand.models.progress import Progress, State
    from rs_ondemand.models.staging import (
        CadipStagingInput,
        CadipStagingResult,
        SessionSearchInput,
        StagingInput,
    )
    from rs_ondemand.names import CADIP_STAGING, PROGRESS_QUERY, STAGING_PROGRESS_SIGNAL
    from rs_ondemand.workflows import _options
    from rs_ondemand.workflows._failures import INVALID_INPUT, is_cancellation, operator_error
    from rs_ondemand.workflows.staging import Staging


@workflow.defn(name=CADIP_STAGING, failure_exception_types=INVALID_INPUT)
class OnDemandCadipStaging:
    """Search the CADIP station for one session (an unknown session fails at once) and stage its chunk files
    into the catalog collection through a `Staging` child. Re-running a staged session stages nothing.

    Query: `progress`.
    """

    def __init__(self) -> None:
        self._progress = Progress()

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> Progress:
        return self._progress

    @workflow.signal(name=STAGING_PROGRESS_SIGNAL)
    def _staging_progress(self, child: Progress) -> None:
        # Counts come from the child; our own state stays ours until the child has finished.
        self._progress = child.model_copy(update={"state": self._progress.state, "step": child.step})

    @workflow.run
    async def run(self, request: CadipStagingInput) -> CadipStagingResult:
        request_id = workflow.info().workflow_id
        self._progress.state, self._progress.step = State.SEARCHING, "search_cadip_session"
        try:
            found = await workflow.execute_activity_method(
                StationActivities.search_cadip_session,
                SessionSearchInput(
                    collection=request.cadip_collection_identifier,
                    session_id=request.session_identifier,
                    request_id=request_id,
                ),
                **_options.SEARCH,
            )
            self._progress.state, self._progress.step = State.STAGING, "staging"
            staged = await workflow.execute_child_workflow(
                Staging.run,
                StagingInput(
                    env=request.env,
                    catalog_collection_identifier=request.catalog_collection_identifier,
                    items=found.items,
                    report_to=request_id,
                ),
                id=f"{request_id}/staging",
                # A cancelled or failed parent cancels the child, which then removes its partial uploads.
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
            )
        # Not `finally`/`BaseException`: a workflow evicted from the cache must not schedule cleanup.
        except (Exception, asyncio.CancelledError) as err:
            await self._forget_manifests(request_id)
            if is_cancellation(err):
                self._progress.state = State.CANCELLED
                raise
            failure = operator_error(f"staging CADIP session {request.session_identifier!r} failed", err)
            self._progress.state, self._progress.last_error = State.FAILED, failure.message
            raise failure from err
        await self._forget_manifests(request_id)
        self._progress.state, self._progress.step = State.COMPLETED, "completed"
        return CadipStagingResult(
            session_identifier=request.session_identifier,
            catalog_collection_identifier=request.catalog_collection_identifier,
            staging=staged,
        )

    async def _forget_manifests(self, request_id: str) -> None:
        await workflow.execute_activity_method(
            StorageActivities.delete_request_manifests, request_id, **_options.CLEANUP
        )
