"""The transfers of one `Staging` workflow: planned a window at a time (small files grouped in batches), run a
bounded number at a time on the station's download queue, each counted in the workflow's progress and result."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.activities.batches import BatchActivities
    from rs_ondemand.activities.stations import StationActivities
    from rs_ondemand.models.staging import (
        AssetTransfer,
        ItemRef,
        StagingInput,
        StagingResult,
        TransferPageInput,
        TransferPlan,
        TransferPlanInput,
    )
    from rs_ondemand.names import download_task_queue
    from rs_ondemand.workflows import _options
    from rs_ondemand.workflows._operator import OperatorControl
    from rs_ondemand.workflows._tasks import all_or_first_error

PLAN_WINDOW = 200
"""Transfers planned by one activity (a few hundred bytes each in history)."""

Finished = Callable[[list[AssetTransfer]], None]
"""Told of transfers verified and stored (an item whose every asset is, can be published)."""


class Transfers:
    """Plans and runs the transfers of `request` for the workflow `control`, adding what is staged to `result`
    and to the workflow's progress, and calling `report` after each (the parent hears of it, throttled)."""

    def __init__(
        self,
        control: OperatorControl,
        request: StagingInput,
        result: StagingResult,
        report: Callable[[], Awaitable[None]],
    ) -> None:
        self.control, self.request, self.result, self.report = control, request, result, report

    async def plan(self, items: list[ItemRef], start: int, end: int, *, skip_staged: bool = False) -> TransferPlan:
        """Transfers `start` to `end` of the (item, asset) pairs of `items`, planned a window at a time (keeps
        each result small): the small files in batches, the others one by one; with `skip_staged`, only those
        whose object S3 does not hold verified."""
        request, control = self.request, self.control
        plan = TransferPlan(singles=[], batches=[])
        offset: int | None = start if start < end else None
        catalog = control._with_attempts(_options.CATALOG)
        while offset is not None:
            window = TransferPageInput(
                owner_id=request.env.owner_id,
                collection=request.catalog_collection_identifier,
                items=items,
                offset=offset,
                limit=min(PLAN_WINDOW, end - offset),
            )
            planning = TransferPlanInput(
                window=window,
                station=request.station,
                parallel=request.max_parallel_transfers,
                skip_staged=skip_staged,
            )
            page = await control._step(
                "plan the transfers",
                lambda p=planning: workflow.execute_activity_method(  # type: ignore[misc]
                    BatchActivities.plan_transfers, p, **catalog
                ),
            )
            plan.singles += page.singles
            plan.batches += page.batches
            offset = page.next_offset if page.next_offset is not None and page.next_offset < end else None
        return plan

    async def run(self, plan: TransferPlan, finished: Finished) -> None:
        """Every transfer of `plan`, at most the request's `max_parallel_transfers` at once (a batch is one: it
        streams one file at a time); the first final failure cancels the others."""
        slots = asyncio.Semaphore(self.request.max_parallel_transfers)
        await all_or_first_error(
            [self._batch(batch, slots, finished) for batch in plan.batches]
            + [self._single(transfer, slots, finished) for transfer in plan.singles]
        )

    def _download_options(self) -> dict[str, Any]:
        # The station's own queue: its worker slots bound downloads across every running request.
        queue = download_task_queue(workflow.info().task_queue, self.request.station)
        return {"task_queue": queue, **self.control._with_attempts(_options.TRANSFER)}

    async def _single(self, transfer: AssetTransfer, slots: asyncio.Semaphore, finished: Finished) -> None:
        async with slots:
            done = await self.control._step(
                f"stream {transfer.item_id}/{transfer.asset_name}",
                lambda: workflow.execute_activity_method(
                    StationActivities.stream_asset,
                    transfer,
                    activity_id=f"stream/{transfer.item_id}/{transfer.asset_name}",
                    **self._download_options(),
                ),
            )
        await self._count([transfer], [done.size], finished)

    async def _batch(self, batch: list[AssetTransfer], slots: asyncio.Semaphore, finished: Finished) -> None:
        first = batch[0]
        more = f" and {len(batch) - 1} more" if len(batch) > 1 else ""
        async with slots:
            done = await self.control._step(
                f"stream {first.item_id}/{first.asset_name}{more}",
                lambda: workflow.execute_activity_method(
                    BatchActivities.transfer_batch,
                    batch,
                    activity_id=f"batch/{first.item_id}/{first.asset_name}",
                    **self._download_options(),
                ),
            )
        await self._count(batch, done.sizes, finished)

    async def _count(self, transfers: list[AssetTransfer], sizes: list[int], finished: Finished) -> None:
        progress = self.control._progress
        self.result.assets_staged += len(transfers)
        self.result.bytes_staged += sum(sizes)
        progress.assets_done += len(transfers)
        progress.bytes_done += sum(sizes)
        finished(transfers)
        await self.report()
