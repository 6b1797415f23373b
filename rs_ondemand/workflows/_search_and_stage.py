"""What the on-demand staging workflows share: search a station, stage every result page in children."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.activities.catalog import CatalogActivities
    from rs_ondemand.activities.stations import StationActivities
    from rs_ondemand.activities.storage import StorageActivities
    from rs_ondemand.models.common import FlowEnv
    from rs_ondemand.models.operator import RequestOptions
    from rs_ondemand.models.progress import State
    from rs_ondemand.models.staging import (
        CatalogItemRef,
        QueryStagingOutcome,
        ReadCatalogItemsInput,
        SearchResult,
        StacQuery,
        StagingInput,
        StagingReport,
        StagingResult,
        Station,
        StationSearchInput,
    )
    from rs_ondemand.names import STAGING_PROGRESS_SIGNAL
    from rs_ondemand.search_attributes import RS_COLLECTION, RS_OWNER, RS_STATION
    from rs_ondemand.workflows import _options
    from rs_ondemand.workflows._failures import is_cancellation
    from rs_ondemand.workflows._lifecycle import run_request
    from rs_ondemand.workflows._operator import OperatorControl
    from rs_ondemand.workflows._tasks import all_or_first_error
    from rs_ondemand.workflows.staging import Staging

T = TypeVar("T")

CHILDREN_IN_FLIGHT = 4
"""`Staging` children (one per result page of 100 items) running at once for one request."""

PROGRESS_SIGNALS = 200
"""Progress signals a parent accepts from all its children together: each costs it a few history events."""

_SUMMED = ("items_done", "items_skipped", "assets_done", "assets_total", "bytes_done", "bytes_total")


class SearchAndStage(OperatorControl):
    """Base of `OnDemandCadipStaging`, `OnDemandPripStaging` and `OnDemandAuxipStaging`.

    Search results stay in the work bucket; history carries page references only, and each page (100 items)
    is staged by its own `Staging` child, a few at a time, so a request of thousands of products keeps every
    history far below Temporal's limits. Children report their counts by signal; `progress` sums them, shows
    `waiting_for_operator` while a child waits, and `retry` is passed on to the children that wait.

    Query: `progress`. Signals: `retry`, `cancel`.
    """

    def _start(self, env: FlowEnv, collection: str, station: Station, options: RequestOptions) -> None:
        """Record what the request is about where operators look for it (search attributes)."""
        self._options = options
        workflow.upsert_search_attributes(
            [RS_OWNER.value_set(env.owner_id), RS_COLLECTION.value_set(collection), RS_STATION.value_set(station)]
        )

    @workflow.signal(name=STAGING_PROGRESS_SIGNAL)
    def _staging_progress(self, report: StagingReport) -> None:
        self._children.take(report.child_id, report.progress)
        children = self._children.reports()
        for name in _SUMMED:
            setattr(self._progress, name, sum(getattr(child, name) for child in children))
        errors = [child.last_error for child in children if child.last_error]
        self._progress.last_error = errors[-1] if errors else self._progress.last_error
        self._show_state()

    async def _search(self, search: StationSearchInput) -> SearchResult:
        self._set_state(State.SEARCHING, f"searching {search.station.upper()}")
        options = self._with_attempts(_options.SEARCH)
        found = await self._step(
            f"search {search.station.upper()}",
            lambda: workflow.execute_activity_method(StationActivities.search_station, search, **options),
        )
        self._progress.items_total += found.items
        return found

    async def _stage(self, found: SearchResult, env: FlowEnv, collection: str, station: Station) -> StagingResult:
        """Stage every page of `found` into `collection` through `Staging` children."""
        self._set_state(State.STAGING, f"staging {found.items} items ({found.assets} assets) into {collection}")
        slots = asyncio.Semaphore(CHILDREN_IN_FLIGHT)
        parent = workflow.info().workflow_id

        async def stage_page(index: int, request: StagingInput) -> StagingResult:
            async with slots:
                return await workflow.execute_child_workflow(
                    Staging.run,
                    request,
                    id=f"{parent}/staging-{collection}-{index:04d}",
                    # A cancelled or failed parent cancels its children, which remove their partial uploads.
                    parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                )

        reports = max(1, PROGRESS_SIGNALS // max(1, len(found.pages)))
        pages = [
            StagingInput(
                env=env,
                catalog_collection_identifier=collection,
                station=station,
                page=page,
                report_to=parent,
                progress_reports=reports,
                options=self._options,
            )
            for page in found.pages
        ]
        total = StagingResult()
        for result in await all_or_first_error([stage_page(i, page) for i, page in enumerate(pages)]):
            total.add(result)
        return total

    async def stage_auxip_query(
        self, query: StacQuery, env: FlowEnv, collection: str, timeout_seconds: int, key: str
    ) -> QueryStagingOutcome:
        """The reusable AUXIP-staging step: search the AUXIP with a STAC query fragment, stage what it finds
        into `collection`, and return the *catalog* items (`s3://` hrefs), not the station's.

        `timeout_seconds` bounds the search and the staging together; 0 or a negative value means no limit
        (the original's -1). On timeout the staging children are cancelled (and clean up) and the outcome
        says so; `key` keeps the manifests of several calls within one workflow apart.
        """

        async def search_and_stage() -> QueryStagingOutcome:
            found = await self._search(self._auxip_search(query, key))
            if not found.items:
                return QueryStagingOutcome()
            staged = await self._stage(found, env, collection, "auxip")
            return QueryStagingOutcome(items=await self._catalog_items(collection, staged.staged + staged.skipped))

        return await self._within(timeout_seconds, search_and_stage())

    async def search_auxip_query(
        self, query: StacQuery, collection: str, timeout_seconds: int, key: str
    ) -> QueryStagingOutcome:
        """`stage_auxip_query` without the staging (a dry run): the items it would stage, with their catalog
        hrefs for those the catalog already has (others have none)."""

        async def search_only() -> QueryStagingOutcome:
            found = await self._search(self._auxip_search(query, key))
            ids = [
                ref.item_id
                for page in found.pages
                for ref in await workflow.execute_activity_method(
                    StorageActivities.read_manifest_page, page, **self._with_attempts(_options.CATALOG)
                )
            ]
            staged = {item.id: item for item in await self._catalog_items(collection, ids)} if ids else {}
            return QueryStagingOutcome(
                items=[staged.get(item_id) or CatalogItemRef(id=item_id, collection=collection) for item_id in ids]
            )

        return await self._within(timeout_seconds, search_only())

    @staticmethod
    def _auxip_search(query: StacQuery, key: str) -> StationSearchInput:
        return StationSearchInput(
            station="auxip",
            request_id=f"{workflow.info().workflow_id}/{key}",
            filter=query.filter,
            sortby=query.sortby,
            max_items=query.limit,
        )

    async def _catalog_items(self, collection: str, ids: list[str]) -> list[CatalogItemRef]:
        return await workflow.execute_activity_method(
            CatalogActivities.read_catalog_items,
            ReadCatalogItemsInput(collection=collection, ids=ids),
            **self._with_attempts(_options.CATALOG),
        )

    @staticmethod
    async def _within(timeout_seconds: int, body: Coroutine[Any, Any, QueryStagingOutcome]) -> QueryStagingOutcome:
        """`body`'s outcome, or a timed-out one after `timeout_seconds` (0 or less: no limit)."""
        if timeout_seconds <= 0:
            return await body
        # Not asyncio.wait_for: a cancelled activity surfaces as ActivityError(CancelledError), which it would
        # not recognise as its own cancellation. Wait with a deadline, then cancel and let the children clean up.
        task = asyncio.create_task(body)
        done, _ = await workflow.wait([task], timeout=timeout_seconds)
        if task in done:
            return task.result()
        task.cancel()
        try:
            await task
        except (Exception, asyncio.CancelledError) as err:
            if not is_cancellation(err):
                raise
        return QueryStagingOutcome(timed_out=True)

    async def _run_request(self, body: Awaitable[T], what: str) -> T:
        """Run a request's body as every request runs (`run_request`); its manifests go whichever way it ends."""

        async def then_forget() -> T:
            result = await body
            await self._forget_manifests()
            return result

        return await run_request(self, what, then_forget(), clean_up=self._forget_manifests)

    async def _forget_manifests(self) -> None:
        await workflow.execute_activity_method(
            StorageActivities.delete_request_manifests, workflow.info().workflow_id, **_options.CLEANUP
        )
