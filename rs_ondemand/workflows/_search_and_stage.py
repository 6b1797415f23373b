"""Search a station and stage every result page in `Staging` children: a helper the staging workflows hold."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.activities.stations import StationActivities
    from rs_ondemand.activities.storage import StorageActivities
    from rs_ondemand.models.common import FlowEnv
    from rs_ondemand.models.operator import RequestOptions
    from rs_ondemand.models.progress import State
    from rs_ondemand.models.staging import (
        PageListSlice,
        PageRef,
        PagesStagingInput,
        SearchResult,
        StagingInput,
        StagingResult,
        Station,
        StationSearchInput,
    )
    from rs_ondemand.names import STAGING_PAGES
    from rs_ondemand.search_attributes import RS_COLLECTION, RS_OWNER, RS_STATION
    from rs_ondemand.workflows import _limits, _options
    from rs_ondemand.workflows._children import SummedChildren
    from rs_ondemand.workflows._lifecycle import remove_empty_collections, run_request
    from rs_ondemand.workflows._operator import OperatorControl
    from rs_ondemand.workflows._tasks import with_shares
    from rs_ondemand.workflows.staging import Staging

CHILDREN_IN_FLIGHT = 4
"""`Staging` children (one per result page of 100 items) running at once for one request."""

PROGRESS_SIGNALS = 200
"""Progress signals a parent accepts from all its children together: each costs it a few history events."""

SUMMED = ("items_done", "items_skipped", "assets_done", "assets_total", "bytes_done", "bytes_total")
"""The counts of a staging parent's progress that are its children's, summed."""


class SearchAndStage:
    """Search a station, then stage every result page into a catalog collection, for the workflow `control`
    (`OnDemandCadipStaging`, the PRIP/AUXIP stagings, `ProcessingUnit` for its ADFs).

    Search results stay in the work bucket; history carries page references only, and each page (100 items)
    is staged by its own `Staging` child, a few at a time, so a request of thousands of products keeps every
    history far below Temporal's limits. Children report their counts with the `staging_progress` signal, which
    this helper handles for the workflow: `progress` sums them, shows `waiting_for_operator` while a child
    waits, and the workflow's `retry` is passed on to the children that wait.
    """

    def __init__(self, control: OperatorControl) -> None:
        self.control = control
        self._collections: list[tuple[str, str]] = []
        """(owner, collection) staged into: a failed request removes those it created and left empty."""
        self.children = SummedChildren(control, SUMMED)

    def start(self, env: FlowEnv, collection: str, station: Station, options: RequestOptions) -> None:
        """Take the request's options and record what it is about where operators look (search attributes)."""
        self.control._options = options
        workflow.upsert_search_attributes(
            [RS_OWNER.value_set(env.owner_id), RS_COLLECTION.value_set(collection), RS_STATION.value_set(station)]
        )

    async def search(self, search: StationSearchInput) -> SearchResult:
        """Search the station; every result page is written to the work bucket, history gets references."""
        control = self.control
        control._set_state(State.SEARCHING, f"searching {search.station.upper()}")
        options = control._with_attempts(_options.SEARCH)
        # More pages than one run stages come back as a page list: history never holds them all.
        search = search.model_copy(update={"inline_pages": _limits.PAGES_PER_RUN})
        found: SearchResult = await control._step(
            f"search {search.station.upper()}",
            lambda: workflow.execute_activity_method(StationActivities.search_station, search, **options),
        )
        control._progress.items_total += found.items
        control._progress.warnings += found.warnings
        return found

    async def stage(self, found: SearchResult, env: FlowEnv, collection: str, station: Station) -> StagingResult:
        """Stage every page of `found` into `collection` through `Staging` children (beyond
        `_limits.PAGES_PER_RUN` pages, through a `StagingPages` child that continues as new)."""
        self.control._set_state(State.STAGING, f"staging {found.items} items ({found.assets} assets) into {collection}")
        self._collections.append((env.owner_id, collection))
        named = found.station or station  # the named station searched (older histories: the kind)
        if found.page_list is None and len(found.pages) <= _limits.PAGES_PER_RUN:
            return await self.stage_pages(found.pages, env, collection, named)
        parent = workflow.info().workflow_id
        pages = PagesStagingInput(
            env=env,
            catalog_collection_identifier=collection,
            station=named,
            pages=found.pages,
            page_list=found.page_list,
            items=found.items,
            report_to=parent,
            progress_reports=PROGRESS_SIGNALS,
            options=self.control._options,
            pages_per_run=_limits.PAGES_PER_RUN,
            assets_per_child=_limits.ASSETS_PER_CHILD,
        )
        staged: StagingResult = await workflow.execute_child_workflow(
            STAGING_PAGES,
            pages,
            id=f"{parent}/pages-{collection}",
            result_type=StagingResult,
            parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
        )
        return staged

    async def pages(self, found: SearchResult) -> list[PageRef]:
        """Every result page of `found` (read from its page list when the search kept them there)."""
        if found.page_list is None:
            return found.pages
        return await self.read_pages(PageListSlice(page_list=found.page_list, start=0, count=found.page_list.pages))

    async def read_pages(self, part: PageListSlice) -> list[PageRef]:
        """Some of the pages of a search that kept them in a page list."""
        catalog = self.control._with_attempts(_options.CATALOG)
        refs: list[PageRef] = await self.control._step(
            "read the search's pages",
            lambda: workflow.execute_activity_method(StorageActivities.read_page_refs, part, **catalog),
        )
        return refs

    async def stage_pages(
        self,
        pages: list[PageRef],
        env: FlowEnv,
        collection: str,
        station: str,
        first: int = 0,
        assets_per_child: int | None = None,
    ) -> StagingResult:
        """Stage `pages` (numbered from `first`) into `collection`, a `Staging` child per page, a few at a time."""
        parent = workflow.info().workflow_id

        def stage_page(index: int, request: StagingInput) -> Callable[[int], Coroutine[Any, Any, StagingResult]]:
            return lambda share: workflow.execute_child_workflow(
                Staging.run,
                request.model_copy(update={"max_parallel_transfers": share}),
                id=f"{parent}/staging-{collection}-{index:04d}",
                # A cancelled or failed parent cancels its children, which remove their partial uploads.
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
            )

        reports = max(1, PROGRESS_SIGNALS // max(1, len(pages)))
        requests = [
            StagingInput(
                env=env,
                catalog_collection_identifier=collection,
                station=station,
                page=page,
                report_to=parent,
                progress_reports=reports,
                options=self.control._options,
                assets_per_child=assets_per_child or _limits.ASSETS_PER_CHILD,
            )
            for page in pages
        ]
        # The request's transfer limit is shared by the children running at once: each gets a share to use
        # while it runs and hands it to the next page when it ends.
        limit = self.control._options.max_parallel_transfers
        jobs = [stage_page(first + i, page) for i, page in enumerate(requests)]
        total = StagingResult()
        for result in await with_shares(limit, CHILDREN_IN_FLIGHT, jobs):
            total.add(result)
        return total

    async def run_request[T](self, what: str, body: Awaitable[T]) -> T:
        """Run the workflow's request (`run_request`); its search manifests are removed whichever way it ends."""

        async def then_forget() -> T:
            result = await body
            await self._forget_manifests()
            return result

        return await run_request(self.control, what, then_forget(), clean_up=self._clean_up)

    async def _clean_up(self) -> None:
        await self._forget_manifests()
        for owner in dict.fromkeys(owner for owner, _ in self._collections):
            await remove_empty_collections(owner, [c for o, c in self._collections if o == owner])

    async def _forget_manifests(self) -> None:
        await workflow.execute_activity_method(
            StorageActivities.delete_request_manifests, workflow.info().workflow_id, **_options.CLEANUP
        )
