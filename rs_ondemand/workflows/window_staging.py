"""`OnDemandPripStaging` and `OnDemandAuxipStaging`: stage every product of a type valid over a window; and the
search-and-stage body they share with `ScheduledStaging` (`FilterStaging`)."""

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
    from rs_ondemand.workflows._search_and_stage import SearchAndStage

NEWEST_FIRST = [{"field": "created", "direction": "desc"}]
"""The original's `sortby -created`."""


class FilterStaging(SearchAndStage):
    """Base of the PRIP and AUXIP staging workflows, on demand and scheduled: stage every product of a station
    that a CQL2 filter selects (every result page, newest first)."""

    async def _stage_filtered(
        self,
        request: WindowStagingInput | ScheduledStagingInput,
        station: Station,
        collections: list[str] | None,
        cql2: dict[str, Any],
    ) -> WindowStagingResult:
        self._start(request.env, request.catalog_collection_identifier, station, request.options)
        found = await self._search(
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
            await self._stage(found, request.env, request.catalog_collection_identifier, station)
            if found.items
            else StagingResult()
        )
        return WindowStagingResult(
            catalog_collection_identifier=request.catalog_collection_identifier,
            filter=cql2,
            items_found=found.items,
            staging=staged,
        )


class _WindowStaging(FilterStaging):
    station: Station

    async def _stage_window(self, request: WindowStagingInput, collections: list[str] | None) -> WindowStagingResult:
        cql2 = valcover_filter(request.start_datetime, request.end_datetime, request.product_type)
        return await self._stage_filtered(request, self.station, collections, cql2)


@workflow.defn(name=PRIP_STAGING, failure_exception_types=INVALID_INPUT)
class OnDemandPripStaging(_WindowStaging):
    """Stage every PRIP product of `product_type` whose validity covers the window (ValCover filter, every
    result page: the original stopped at 10). Query: `progress`. Signals: `retry`, `cancel`."""

    station: Station = "prip"

    @workflow.run
    async def run(self, request: PripStagingInput) -> WindowStagingResult:
        return await self._run_request(
            self._stage_window(request, [request.prip_collection]), f"staging PRIP {request.product_type}"
        )


@workflow.defn(name=AUXIP_STAGING, failure_exception_types=INVALID_INPUT)
class OnDemandAuxipStaging(_WindowStaging):
    """Stage every AUXIP file of `product_type` whose validity covers the window.

    Query: `progress`. Signals: `retry`, `cancel`.
    """

    station: Station = "auxip"

    @workflow.run
    async def run(self, request: AuxipStagingInput) -> WindowStagingResult:
        collections = [request.auxip_collection] if request.auxip_collection else None
        return await self._run_request(
            self._stage_window(request, collections), f"staging AUXIP {request.product_type}"
        )
