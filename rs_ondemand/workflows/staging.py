"""`Staging` child workflow: stage station items into one catalog collection."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.activities.catalog import CatalogActivities
    from rs_ondemand.activities.stations import StationActivities
    from rs_ondemand.activities.storage import StorageActivities
    from rs_ondemand.models.progress import Progress, State
    from rs_ondemand.models.staging import (
        AssetTransfer,
        DiscardItemsInput,
        ItemRef,
        PrepareStagingInput,
        PublishItemInput,
        StagingInput,
        StagingReport,
        StagingResult,
        TransferPageInput,
    )
    from rs_ondemand.names import PROGRESS_QUERY, STAGING, STAGING_PROGRESS_SIGNAL, download_task_queue
    from rs_ondemand.workflows import _options
    from rs_ondemand.workflows._failures import INVALID_INPUT, is_cancellation, operator_error
    from rs_ondemand.workflows._tasks import all_or_first_error

PROGRESS_REPORTS = 20
"""About this many progress signals to the parent per run, to spare its history."""


@workflow.defn(name=STAGING, failure_exception_types=INVALID_INPUT)
class Staging:
    """Stage station items into a catalog collection (the RS staging service, rs-reference.md §5.2).

    Items already in the collection are skipped. Assets stream station → S3 in parallel, each verified
    against the station's size and MD5; an item is published only once all its assets are verified. On a
    failure or a cancel, what was written for unpublished items is removed; published items stay.

    Query: `progress`.
    """

    def __init__(self) -> None:
        self._progress = Progress(state=State.STAGING)
        self._result = StagingResult()
        self._reported_at = 0

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> Progress:
        return self._progress

    @workflow.run
    async def run(self, request: StagingInput) -> StagingResult:
        progress = self._progress
        owner, collection = request.env.owner_id, request.catalog_collection_identifier
        items = await workflow.execute_activity_method(
            StorageActivities.read_manifest_page, request.page, **_options.CATALOG
        )
        progress.items_total = len(items)
        progress.step = "checking the catalog"
        prepared = await workflow.execute_activity_method(
            CatalogActivities.prepare_staging,
            PrepareStagingInput(owner_id=owner, collection=collection, item_ids=[i.item_id for i in items]),
            **_options.CATALOG,
        )
        existing = set(prepared.existing)
        todo = [item for item in items if item.item_id not in existing]
        self._result.skipped = [item.item_id for item in items if item.item_id in existing]
        self._result.items_skipped = len(self._result.skipped)
        progress.items_skipped = progress.items_done = len(self._result.skipped)
        progress.assets_total = sum(item.asset_count for item in todo)
        progress.bytes_total = sum(item.total_bytes for item in todo)
        progress.step = f"staging {len(todo)} items, {len(existing)} already in {collection}"
        await self._report(request, force=True)

        slots = asyncio.Semaphore(request.max_parallel_transfers)
        try:
            await all_or_first_error([self._stage_item(request, item, slots) for item in todo])
        except (Exception, asyncio.CancelledError) as err:
            cancelled = is_cancellation(err)
            progress.state, progress.step = State.CLEANING_UP, "removing what unpublished items wrote"
            progress.last_error = None if cancelled else str(operator_error("staging", err).message)
            unpublished = [item.item_id for item in todo if item.item_id not in self._result.staged]
            if unpublished:
                await workflow.execute_activity_method(
                    StorageActivities.discard_staged_items,
                    DiscardItemsInput(owner_id=owner, collection=collection, item_ids=unpublished),
                    **_options.CLEANUP,
                )
            progress.state = State.CANCELLED if cancelled else State.FAILED
            await self._report(request, force=True)
            if cancelled:
                raise
            raise operator_error(f"staging into {collection!r} failed", err) from err
        progress.state, progress.step = State.COMPLETED, f"{len(self._result.staged)} items published"
        await self._report(request, force=True)
        return self._result

    async def _stage_item(self, request: StagingInput, item: ItemRef, slots: asyncio.Semaphore) -> None:
        owner, collection = request.env.owner_id, request.catalog_collection_identifier
        transfers = []
        offset: int | None = 0
        while offset is not None:
            page = await workflow.execute_activity_method(
                StorageActivities.list_asset_transfers,
                TransferPageInput(owner_id=owner, collection=collection, item=item, offset=offset),
                **_options.CATALOG,
            )
            transfers += [self._transfer(request, t, slots) for t in page.transfers]
            offset = page.next_offset
        await all_or_first_error(transfers)
        published = await workflow.execute_activity_method(
            CatalogActivities.publish_staged_item,
            PublishItemInput(owner_id=owner, collection=collection, item=item),
            **_options.CATALOG,
        )
        self._result.staged.append(published.item_id)
        self._result.items_staged += 1
        self._progress.items_done += 1
        await self._report(request)

    async def _transfer(self, request: StagingInput, transfer: AssetTransfer, slots: asyncio.Semaphore) -> None:
        async with slots:
            result = await workflow.execute_activity_method(
                StationActivities.stream_asset,
                transfer,
                activity_id=f"stream/{transfer.item_id}/{transfer.asset_name}",
                # The station's own queue: its worker slots bound downloads across every running request.
                task_queue=download_task_queue(workflow.info().task_queue, request.station),
                **_options.TRANSFER,
            )
        self._result.assets_staged += 1
        self._result.bytes_staged += result.size
        self._progress.assets_done += 1
        self._progress.bytes_done += result.size
        await self._report(request)

    async def _report(self, request: StagingInput, *, force: bool = False) -> None:
        """Send our counts to the parent, throttled so its history stays small."""
        if not request.report_to:
            return
        p = self._progress
        done, total = p.assets_done + p.items_done, p.assets_total + p.items_total
        if not force and done - self._reported_at < max(1, total // PROGRESS_REPORTS):
            return
        self._reported_at = done
        report = StagingReport(child_id=workflow.info().workflow_id, progress=p)
        await workflow.get_external_workflow_handle(request.report_to).signal(STAGING_PROGRESS_SIGNAL, report)
