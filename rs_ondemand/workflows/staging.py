"""`Staging` child workflow: stage the station items of one search page into one catalog collection."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.activities.catalog import CatalogActivities
    from rs_ondemand.activities.storage import StorageActivities
    from rs_ondemand.activities.temporal import TemporalActivities
    from rs_ondemand.models.progress import State
    from rs_ondemand.models.publication import (
        DiscardItemsInput,
        DiscardRequest,
        PublicationRequest,
        PublishItemsInput,
        PublishItemsResult,
    )
    from rs_ondemand.models.staging import (
        AssetSlice,
        AssetTransfer,
        ItemRef,
        PrepareStagingInput,
        StagingInput,
        StagingReport,
        StagingResult,
    )
    from rs_ondemand.names import STAGING, STAGING_PROGRESS_SIGNAL
    from rs_ondemand.workflows import _options
    from rs_ondemand.workflows._children import SummedChildren
    from rs_ondemand.workflows._failures import INVALID_INPUT
    from rs_ondemand.workflows._lifecycle import request_id, run_request
    from rs_ondemand.workflows._operator import OperatorControl, stop_if_requested
    from rs_ondemand.workflows._tasks import all_or_first_error, with_shares
    from rs_ondemand.workflows._transfers import Transfers

PARTS_IN_FLIGHT = 2
"""Parts of a page transferring at once (they share the page's transfer limit)."""
PART_REPORTS = 20
"""Progress reports each part sends the page's workflow."""

PUBLISH_BATCH = 200
"""Verified items published at most in one catalog write (whatever is verified when the last write ends)."""
RESTAGES = 2
"""Times an item whose staged assets vanished before publication is transferred again."""
UNVERIFIED_ASSET = "UnverifiedAssetError"


@workflow.defn(name=STAGING, failure_exception_types=INVALID_INPUT)
class Staging(OperatorControl):
    """Stage station items into a catalog collection, as the RS staging service does
    (docs/rs-compatibility.md#staging-service).

    Items already in the collection are skipped. Assets stream station → S3 in parallel on the station's
    download queue, each verified against the station's size and MD5; an item is published once all its
    assets are verified (in batches, while other transfers go on). On a failure or a cancel, what was written
    for unpublished items is removed; published items stay.

    A step that fails after its retry policy (station or catalog down) waits for `retry` from the parent
    (`waiting_for_operator`); transfers already done are not done again.

    Query: `progress`. Signals: `retry`, `cancel`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._result = StagingResult()
        self._reported_at = 0
        self._ready: list[ItemRef] = []
        self._unfinished = 0
        self._request: StagingInput | None = None
        self._publications = 0
        self._restaged: dict[str, int] = {}
        # A page staged in parts shows the transfers of its parts (they report to it).
        self._parts = SummedChildren(self, ("assets_done", "bytes_done"))

    @workflow.run
    async def run(self, request: StagingInput) -> StagingResult:
        self._request, self._options = request, request.options
        if request.part is not None:
            return await self._transfer_part(request, request.part)
        self._set_state(State.STAGING, "reading the search page")
        progress = self._progress
        owner, collection = request.env.owner_id, request.catalog_collection_identifier
        catalog = self._with_attempts(_options.CATALOG)
        items = await self._step(
            "read the search page",
            lambda: workflow.execute_activity_method(StorageActivities.read_manifest_page, request.page, **catalog),
        )
        progress.items_total = len(items)
        progress.step = "checking the catalog"
        prepared = await self._step(
            "check the catalog",
            lambda: workflow.execute_activity_method(
                CatalogActivities.prepare_staging,
                PrepareStagingInput(
                    owner_id=owner, collection=collection, item_ids=[i.item_id for i in items], request_id=request_id()
                ),
                **catalog,
            ),
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

        return await run_request(
            self,
            f"staging into {collection!r}",
            self._stage_items(request, todo),
            clean_up=lambda: self._discard_unpublished(request, todo),
            completed=lambda: f"{self._result.items_staged} items published",
            settled=lambda: self._report(request, force=True),
        )

    async def _stage_items(self, request: StagingInput, todo: list[ItemRef]) -> StagingResult:
        """Transfer every asset, publishing each item as soon as all its assets are verified."""
        self._unfinished = len(todo)
        assets = sum(item.asset_count for item in todo)
        if assets > request.assets_per_child:
            await self._stage_in_parts(request, todo, assets)
            self._ready = list(todo)
            await self._publisher(request)
            return self._result
        transfers = self._transfers(request)
        plan = await transfers.plan(todo, 0, assets)
        missing = {item.item_id: 0 for item in todo}
        for transfer in plan.transfers():
            missing[transfer.item_id] += 1
        by_id = {item.item_id: item for item in todo}
        self._ready = [item for item in todo if not missing[item.item_id]]  # nothing to transfer

        def finished(done: list[AssetTransfer]) -> None:
            for transfer in done:
                missing[transfer.item_id] -= 1
                if not missing[transfer.item_id]:
                    self._ready.append(by_id[transfer.item_id])  # every asset verified: the publisher takes it

        await all_or_first_error([transfers.run(plan, finished), self._publisher(request)])
        return self._result

    def _transfers(self, request: StagingInput) -> Transfers:
        return Transfers(self, request, self._result, lambda: self._report(request))

    async def _stage_in_parts(self, request: StagingInput, todo: list[ItemRef], assets: int) -> None:
        """Too many assets for one history (a CADIP session of thousands of chunks): `Staging` children
        transfer `assets_per_child` of them each, reporting to this workflow; publication and cleanup stay
        here."""
        parent, size = workflow.info().workflow_id, request.assets_per_child
        windows = [(start, min(start + size, assets)) for start in range(0, assets, size)]

        def part(number: int, start: int, end: int) -> Callable[[int], Coroutine[Any, Any, StagingResult]]:
            slice_ = AssetSlice(items=todo, start=start, end=end)
            update = {"part": slice_, "report_to": parent, "progress_reports": PART_REPORTS}
            return lambda share: workflow.execute_child_workflow(
                Staging.run,
                request.model_copy(update={**update, "max_parallel_transfers": share}),
                id=f"{parent}/part-{number:03d}",
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
            )

        jobs = [part(number, start, end) for number, (start, end) in enumerate(windows)]
        for done in await with_shares(request.max_parallel_transfers, PARTS_IN_FLIGHT, jobs):
            self._result.assets_staged += done.assets_staged
            self._result.bytes_staged += done.bytes_staged

    async def _transfer_part(self, request: StagingInput, part: AssetSlice) -> StagingResult:
        """As a part of a page: transfer assets `part.start` to `part.end` of its items, nothing else."""
        what = f"assets {part.start + 1}-{part.end} of {request.page.key}"
        self._set_state(State.STAGING, f"transferring {what}")
        self._progress.assets_total = part.end - part.start

        async def transfer() -> StagingResult:
            transfers = self._transfers(request)
            plan = await transfers.plan(part.items, part.start, part.end)
            everything = plan.transfers()
            self._progress.bytes_total = sum(transfer.size or 0 for transfer in everything)
            await transfers.run(plan, lambda done: None)
            return self._result

        # Nothing to clean up here: the page's workflow removes what its unpublished items wrote.
        return await run_request(
            self, f"transferring {what}", transfer(), settled=lambda: self._report(request, force=True)
        )

    async def _discard_unpublished(self, request: StagingInput, todo: list[ItemRef]) -> None:
        """After a failure or a cancel: what was written for items not published yet is removed. An item the
        catalog has is kept (its publication's answer lost to the cancel, or another request published it)."""
        self._set_state(State.CLEANING_UP, "removing what unpublished items wrote")
        published = set(self._result.staged)
        unpublished = [item.item_id for item in todo if item.item_id not in published]
        if unpublished:
            info = workflow.info()
            discard = DiscardRequest(
                discard=DiscardItemsInput(
                    owner_id=request.env.owner_id,
                    collection=request.catalog_collection_identifier,
                    item_ids=unpublished,
                ),
                update_id=f"{info.workflow_id}/{info.run_id}/discard",
                task_queue=info.task_queue,
            )
            # Through the collection's publisher: between two writes, never during one that may be publishing
            # an item of ours that another request staged too (the same objects).
            await workflow.execute_activity_method(
                TemporalActivities.discard_in_collection, discard, **_options.DISCARD
            )

    async def _on_state_change(self) -> None:
        if self._request is not None:
            await self._report(self._request, force=True)

    async def _publisher(self, request: StagingInput) -> None:
        """Publish verified items, whatever is verified at once, until every item of the page is published."""
        while self._unfinished:
            stop_if_requested("publish")  # a cancel held while the last batch was published
            await workflow.wait_condition(lambda: bool(self._ready))
            batch, self._ready = self._ready[:PUBLISH_BATCH], self._ready[PUBLISH_BATCH:]
            publish = PublishItemsInput(
                owner_id=request.env.owner_id, collection=request.catalog_collection_identifier, items=batch
            )
            published = await self._step(
                "publish",
                lambda p=publish: self._publish(p),  # type: ignore[misc]
                publishes=True,
            )
            left_out = set(published.unverified)
            done = [item for item in batch if item.item_id not in left_out]
            self._result.staged += [item.item_id for item in done]
            self._result.items_staged += len(done)
            self._progress.items_done += len(done)
            self._unfinished -= len(done)
            if published.existing:
                workflow.logger.info("already published by another request: %s", published.existing)
            await self._report(request)
            if left_out:
                await self._restage(request, [item for item in batch if item.item_id in left_out])

    async def _restage(self, request: StagingInput, items: list[ItemRef]) -> None:
        """Transfer again what publication found missing or changed of `items` (another request's cleanup removed
        objects both requests write, or S3 lost them): the assets S3 does not hold verified. The items go back
        to the publisher; one found so `RESTAGES + 1` times fails the request."""
        for item in items:
            self._restaged[item.item_id] = self._restaged.get(item.item_id, 0) + 1
            if self._restaged[item.item_id] > RESTAGES:
                raise ApplicationError(
                    f"{item.item_id!r}: its staged assets were missing or changed in S3 at publication, "
                    f"{RESTAGES + 1} times: not published",
                    type=UNVERIFIED_ASSET,
                    non_retryable=True,
                )
        self._warn(
            f"transferring {', '.join(repr(i.item_id) for i in items)} again: an asset was missing or changed "
            "in S3 at publication (removed by another request's cleanup, or lost by S3)"
        )
        transfers = self._transfers(request)
        plan = await transfers.plan(items, 0, sum(item.asset_count for item in items), skip_staged=True)
        again = plan.transfers()
        self._progress.assets_total += len(again)
        self._progress.bytes_total += sum(transfer.size or 0 for transfer in again)
        await transfers.run(plan, lambda done: None)
        self._ready += items

    async def _publish(self, publish: PublishItemsInput) -> PublishItemsResult:
        """One attempt of the publish step, through the collection's one publisher (`CollectionPublisher`)."""
        self._publications += 1
        info = workflow.info()
        publication = PublicationRequest(
            publish=publish,
            step_attempts=self._options.step_attempts,
            update_id=f"{info.workflow_id}/{info.run_id}/publish-{self._publications}",
            task_queue=info.task_queue,
        )
        return await workflow.execute_activity_method(
            TemporalActivities.publish_in_collection, publication, **self._with_attempts(_options.PUBLISH)
        )

    async def _report(self, request: StagingInput, *, force: bool = False) -> None:
        """Send our counts to the parent, throttled so its history stays small."""
        if not request.report_to:
            return
        p = self._progress
        done, total = p.assets_done + p.items_done, p.assets_total + p.items_total
        if not force and done - self._reported_at < max(1, total // request.progress_reports):
            return
        self._reported_at = done
        report = StagingReport(child_id=workflow.info().workflow_id, progress=p)
        await workflow.get_external_workflow_handle(request.report_to).signal(STAGING_PROGRESS_SIGNAL, report)
