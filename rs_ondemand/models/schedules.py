"""Contracts of scheduled (systematic) staging: a run's input and result, its window, and backfill arithmetic.

A run scheduled for time `t` stages the products of one type *published* in `[t - window - overlap, t)`.
Pure code: the workflow, the starter and the tests share it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, model_validator

from rs_ondemand.models.common import FlowEnv, OperatorInput, SafeName
from rs_ondemand.models.operator import RequestOptions
from rs_ondemand.models.staging import ProductType, StagingResult
from rs_ondemand.models.timewindow import strftime_millis

ScheduledStation = Literal["prip", "auxip"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Temporal's interval schedules fire at `EPOCH + offset + n * every`."""


class ScheduledStagingInput(OperatorInput):
    """Input of `ScheduledStaging` (the action of a staging schedule; the same for every run)."""

    station: ScheduledStation
    env: FlowEnv
    product_type: str = ProductType
    catalog_collection_identifier: SafeName
    """Catalog collection receiving the products (created if missing)."""
    prip_collection: SafeName | None = None
    """PRIP station collection to search (required for `prip`), e.g. `prip` or `prip_sentinel1`."""
    auxip_collection: SafeName | None = None
    """AUXIP station collection to search (`auxip` only); every collection when omitted."""
    window_seconds: int = Field(ge=1, le=366 * 86400)
    """Publication time a run covers before its scheduled time: the schedule's interval."""
    overlap_seconds: int = Field(0, ge=0, le=366 * 86400)
    """Added before the window: products indexed late by the station are still found by the next run."""
    options: RequestOptions = Field(default_factory=RequestOptions)

    @model_validator(mode="after")
    def _collections_match_the_station(self) -> Self:
        if self.station == "prip" and not self.prip_collection:
            raise ValueError("prip_collection is required for station prip")
        if self.station == "prip" and self.auxip_collection:
            raise ValueError("auxip_collection is for station auxip, not prip")
        if self.station == "auxip" and self.prip_collection:
            raise ValueError("prip_collection is for station prip, not auxip")
        return self

    @property
    def lookback(self) -> timedelta:
        return timedelta(seconds=self.window_seconds + self.overlap_seconds)

    def window(self, scheduled: datetime) -> tuple[datetime, datetime]:
        """The publication window `[start, end)` of the run scheduled for `scheduled`."""
        return scheduled - self.lookback, scheduled

    def station_collections(self) -> list[str] | None:
        collection = self.prip_collection if self.station == "prip" else self.auxip_collection
        return [collection] if collection else None


class ScheduledStagingResult(BaseModel):
    """What one run searched for and staged."""

    scheduled_time: datetime
    """The time the run was scheduled for (Temporal's `TemporalScheduledStartTime`), or its start by hand."""
    window_start: datetime
    window_end: datetime
    """Products published in `[window_start, window_end)` were searched for."""
    catalog_collection_identifier: str
    filter: dict[str, Any]
    items_found: int
    staging: StagingResult


def published_filter(start: datetime, end: datetime, product_type: str) -> dict[str, Any]:
    """Products of `product_type` published in `[start, end)` (CQL2-JSON; half-open so that consecutive windows
    without overlap share no product)."""
    return {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "product:type"}, product_type]},
            {"op": ">=", "args": [{"property": "published"}, {"timestamp": strftime_millis(start)}]},
            {"op": "<", "args": [{"property": "published"}, {"timestamp": strftime_millis(end)}]},
        ],
    }


class BackfillPlan(BaseModel):
    """The runs a backfill of `[start, end)` takes, and the publication times they cover together."""

    first_run: datetime
    last_run: datetime
    runs: int
    every_seconds: float
    covers_start: datetime
    covers_end: datetime
    """Products published in `[covers_start, covers_end)` are staged: `[start, end)` and, before it, at most one
    interval (when `start` is off the schedule's grid) plus the overlap."""
    start_at: datetime
    end_at: datetime
    """The range given to Temporal: half an interval around the first and last run, strictly between two
    scheduled times, so the result does not depend on whether Temporal counts the range's ends in."""


def grid_after(moment: datetime, every: timedelta, offset: timedelta, inclusive: bool) -> datetime:
    """The first time of the grid `EPOCH + offset + n * every` after `moment` (or at it, when inclusive)."""
    steps, rest = divmod(moment - EPOCH - offset, every)
    if rest or not inclusive:
        steps += 1
    return EPOCH + offset + steps * every


def plan_backfill(
    start: datetime, end: datetime, every: timedelta, offset: timedelta, request: ScheduledStagingInput
) -> BackfillPlan:
    """The runs whose windows cover `[start, end)`: the first scheduled time after `start` (its window reaches
    back to `start` as long as the window is at least the interval) to the first one at or after `end`."""
    if end <= start:
        raise ValueError(f"end {end.isoformat()} must be after start {start.isoformat()}")
    first = grid_after(start, every, offset, inclusive=False)
    last = grid_after(end, every, offset, inclusive=True)
    return BackfillPlan(
        first_run=first,
        last_run=last,
        runs=(last - first) // every + 1,
        every_seconds=every.total_seconds(),
        covers_start=request.window(first)[0],
        covers_end=last,
        start_at=first - every / 2,
        end_at=last + every / 2,
    )


def run_times(plan: BackfillPlan) -> list[datetime]:
    """Every scheduled time of the plan."""
    every = timedelta(seconds=plan.every_seconds)
    return [plan.first_run + index * every for index in range(plan.runs)]
