"""`ScheduledStaging`: one run of a staging schedule, the products published in the window before its time."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.models.schedules import ScheduledStagingInput, ScheduledStagingResult, published_filter
    from rs_ondemand.models.timewindow import strftime_millis
    from rs_ondemand.names import SCHEDULED_STAGING
    from rs_ondemand.workflows._failures import INVALID_INPUT
    from rs_ondemand.workflows._operator import OperatorControl
    from rs_ondemand.workflows._search_and_stage import SearchAndStage
    from rs_ondemand.workflows.window_staging import stage_filtered

SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
"""Set by Temporal on every workflow a schedule starts (also on backfills): the time the run is *for*."""


def scheduled_time() -> datetime:
    """The time this run was scheduled for; when started by hand, now."""
    return workflow.info().typed_search_attributes.get(SCHEDULED_START_TIME) or workflow.now()


@workflow.defn(name=SCHEDULED_STAGING, failure_exception_types=INVALID_INPUT)
class ScheduledStaging(OperatorControl):
    """Stage every PRIP/AUXIP product of a type *published* in `[t - window - overlap, t)`, `t` being the time
    the run was scheduled for, so a late, buffered or backfilled run covers its own window and not "now".

    Products already in the catalog collection are skipped: overlapping windows, a backfill over a window that
    already ran, or a duplicated trigger never stage a product twice. Query: `progress`. Signals: `retry`,
    `cancel`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._stager = SearchAndStage(self)

    @workflow.run
    async def run(self, request: ScheduledStagingInput) -> ScheduledStagingResult:
        scheduled = scheduled_time()
        start, end = request.window(scheduled)
        what = (
            f"scheduled {request.station.upper()} staging of {request.product_type} published in "
            f"[{strftime_millis(start)}, {strftime_millis(end)})"
        )
        return await self._stager.run_request(what, self._stage_published(request, scheduled, start, end))

    async def _stage_published(
        self, request: ScheduledStagingInput, scheduled: datetime, start: datetime, end: datetime
    ) -> ScheduledStagingResult:
        cql2 = published_filter(start, end, request.product_type)
        staged = await stage_filtered(self._stager, request, request.station, request.station_collections(), cql2)
        return ScheduledStagingResult(scheduled_time=scheduled, window_start=start, window_end=end, **dict(staged))
