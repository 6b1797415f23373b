"""`OnDemandPripStaging` and `OnDemandAuxipStaging`: stage every product of a type valid over a window; and the
search-and-stage body they share with `ScheduledStaging` (`stage_filtered`)."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.cql2_filters import valcover_filter
    from rs_ondemand.models.schedules import ScheduledStagingInput
    from rs_ondemand.models.staging import (
        AuxipStagingInput,
        PripStagingInput,
        StagingResult,
        Station,
        StationSearchInput,
        WindowStagingInput,
        WindowStagingResult,
    )
    from rs_ondemand.names import AUXIP_STAGING, PRIP_STAGING
    from rs_ondemand.workflows._failures import INVALID_INPUT
    from rs_ondemand.workflows._operator import OperatorControl
    from rs_ondemand.workflows._search_and_stage import SearchAndStage

NEWEST_FIRST = [{"field": "created", "direction": "desc"}]
"""The original's `sortby -created`."""


async def stage_filtered(
    stager: SearchAndStage,
    request: WindowStagingInput | ScheduledStagingInput,
    station: Station,
    collections: list[str] | None,
    cql2: dict[str, Any],
) -> WindowStagingResult:
    """Stage every product of `station` that a CQL2 filter selects (every result page, newest first): the body of
    the PRIP and AUXIP staging workflows, on demand and scheduled."""
    stager.start(request.env, request.catalog_collection_identifier, station, request.options)
    found = await stager.search(
        StationSearchInput(
            station=station,
            request_id=workflow.info().workflow_id,
            collections=collections,
            filter=cql2,
            sortby=NEWEST_FIRST,
        )
    )
    # Unlike CADIP, no match is a success with nothing staged (the original's error_if_empty=False).
    staged = (
        await stager.stage(found, request.env, request.catalog_collection_identifier, station)
        if found.items
        else StagingResult()
    )
    return WindowStagingResult(
        catalog_collection_identifier=request.catalog_collection_identifier,
        filter=cql2,
        items_found=found.items,
        staging=staged,
    )


async def _stage_window(
    stager: SearchAndStage, request: WindowStagingInput, station: Station, collections: list[str] | None
) -> WindowStagingResult:
    cql2 = valcover_filter(request.start_datetime, request.end_datetime, request.product_type)
    return await stage_filtered(stager, request, station, collections, cql2)


@workflow.defn(name=PRIP_STAGING, failure_exception_types=INVALID_INPUT)
class OnDemandPripStaging(OperatorControl):
    """Stage every PRIP product of `product_type` whose validity covers the window (ValCover filter, every
    result page: the original stopped at 10). Query: `progress`. Signals: `retry`, `cancel`."""

    def __init__(self) -> None:
        super().__init__()
        self._stager = SearchAndStage(self)

    @workflow.run
    async def run(self, request: PripStagingInput) -> WindowStagingResult:
        body = _stage_window(self._stager, request, "prip", [request.prip_collection])
        return await self._stager.run_request(f"staging PRIP {request.product_type}", body)


@workflow.defn(name=AUXIP_STAGING, failure_exception_types=INVALID_INPUT)
class OnDemandAuxipStaging(OperatorControl):
    """Stage every AUXIP file of `product_type` whose validity covers the window.

    Query: `progress`. Signals: `retry`, `cancel`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._stager = SearchAndStage(self)

    @workflow.run
    async def run(self, request: AuxipStagingInput) -> WindowStagingResult:
        collections = [request.auxip_collection] if request.auxip_collection else None
        body = _stage_window(self._stager, request, "auxip", collections)
        return await self._stager.run_request(f"staging AUXIP {request.product_type}", body)
