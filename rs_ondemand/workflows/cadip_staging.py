"""`OnDemandCadipStaging`: find one CADIP session and stage it (docs/rs-compatibility.md#cadip-staging)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.models.staging import CadipStagingInput, CadipStagingResult, StationSearchInput
    from rs_ondemand.names import CADIP_STAGING
    from rs_ondemand.search_attributes import RS_SESSION
    from rs_ondemand.workflows._failures import INVALID_INPUT
    from rs_ondemand.workflows._operator import OperatorControl
    from rs_ondemand.workflows._search_and_stage import SearchAndStage


@workflow.defn(name=CADIP_STAGING, failure_exception_types=INVALID_INPUT)
class OnDemandCadipStaging(OperatorControl):
    """Search the CADIP station for one session (an unknown session fails at once) and stage its chunk files
    into the catalog collection. Re-running a staged session stages nothing.

    Query: `progress`. Signals: `retry`, `cancel`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._stager = SearchAndStage(self)

    @workflow.run
    async def run(self, request: CadipStagingInput) -> CadipStagingResult:
        what = f"staging CADIP session {request.session_identifier!r}"
        return await self._stager.run_request(what, self._body(request))

    async def _body(self, request: CadipStagingInput) -> CadipStagingResult:
        self._stager.start(request.env, request.catalog_collection_identifier, "cadip", request.options)
        workflow.upsert_search_attributes([RS_SESSION.value_set(request.session_identifier)])
        found = await self._stager.search(
            StationSearchInput(
                station="cadip",
                request_id=workflow.info().workflow_id,
                ids=[request.session_identifier],
                collections=[request.cadip_collection_identifier],
                require_complete=request.require_complete,
            )
        )
        if not found.items:  # the original's error_if_empty=True
            raise ApplicationError(
                f"No Cadip session found for id={request.session_identifier!r} "
                f"collection={request.cadip_collection_identifier!r}",
                type="NotFoundError",
                non_retryable=True,
            )
        staged = await self._stager.stage(found, request.env, request.catalog_collection_identifier, "cadip")
        return CadipStagingResult(
            session_identifier=request.session_identifier,
            catalog_collection_identifier=request.catalog_collection_identifier,
            staging=staged,
            warnings=found.warnings,
        )
