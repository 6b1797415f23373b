"""`StagingPages` child workflow: stage the many result pages of one request, continuing as new every few pages."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.models.progress import Progress, State
    from rs_ondemand.models.staging import PageListSlice, PagesStagingInput, StagingReport, StagingResult
    from rs_ondemand.names import STAGING_PAGES, STAGING_PROGRESS_SIGNAL
    from rs_ondemand.workflows._failures import INVALID_INPUT
    from rs_ondemand.workflows._lifecycle import run_request
    from rs_ondemand.workflows._operator import OperatorControl
    from rs_ondemand.workflows._search_and_stage import SearchAndStage


@workflow.defn(name=STAGING_PAGES, failure_exception_types=INVALID_INPUT)
class StagingPages(OperatorControl):
    """Stage the result pages of a request too large for one history (a PRIP window of 100,000 products is
    1,000 pages): each run reads its `pages_per_run` pages from the search's page list, stages them through
    `Staging` children, a few at a time, waits for them all, and continues as new with the number of the next
    page, what was staged and the counts so far (an input of the same size whatever the window).

    Its parent sees one child: the counts of every run (carried from run to run, plus the running children's)
    in throttled `staging_progress` reports, `waiting_for_operator` and the waiting steps while a child waits.
    The parent's `retry` reaches this workflow (under the same id in every run), which passes it on to its
    waiting children; a cancel cancels the running children, which clean up after themselves.
    """

    def __init__(self) -> None:
        super().__init__()
        self._stager = SearchAndStage(self)
        self._request: PagesStagingInput | None = None
        self._sent: Progress | None = None

    @workflow.run
    async def run(self, request: PagesStagingInput) -> StagingResult:
        self._request, self._options = request, request.options
        first, collection = request.first_page, request.catalog_collection_identifier
        if request.page_list is None:  # the search returned every page itself (requests started before page lists)
            total, items = first + len(request.pages), sum(page.items for page in request.pages)
        else:
            total, items = request.page_list.pages, request.items
        count = min(request.pages_per_run, total - first)
        children = self._stager.children
        children.base = request.done
        # Reports of the children of earlier runs may not count twice: only this run's children are heard.
        parent = workflow.info().workflow_id
        children.only = {f"{parent}/staging-{collection}-{first + i:04d}" for i in range(count)}
        self._progress = request.done.model_copy(deep=True)
        if not first:
            self._progress.items_total = items
        what = f"pages {first + 1}-{first + count} of {total}"
        self._set_state(State.STAGING, f"staging {what}")
        reporter = asyncio.create_task(self._report_changes())

        async def this_run() -> StagingResult:
            if request.page_list is None:
                pages = request.pages[:count]
            else:
                pages = await self._stager.read_pages(
                    PageListSlice(page_list=request.page_list, start=first, count=count)
                )
            staged = request.staged.model_copy(deep=True)
            staged.add(
                await self._stager.stage_pages(
                    pages, request.env, collection, request.station, first, request.assets_per_child
                )
            )
            return staged

        left = first + count < total
        staged = await run_request(
            self,
            f"staging {what} into {collection!r}",
            this_run(),
            # A run with pages left is not the request's end: its state stays `staging` for the next run.
            completed=None if left else lambda: f"{self._progress.items_done} items done",
            settled=lambda: self._report(force=True),
        )
        reporter.cancel()  # (after a failure the run ends with it)
        if not left:
            return staged
        await workflow.wait_condition(workflow.all_handlers_finished)
        done = self._progress.model_copy(update={"waiting_steps": [], "last_error": None})
        update = {"first_page": first + count, "staged": staged, "done": done}
        if request.page_list is None:
            update["pages"] = request.pages[count:]
        workflow.continue_as_new(request.model_copy(update=update))

    async def _report_changes(self) -> None:
        """Report to the parent whenever the state changes or enough was done since the last report."""
        while True:
            await workflow.wait_condition(self._report_due)
            await self._report()

    def _report_due(self) -> bool:
        sent, now = self._sent, self._progress
        if sent is None or (sent.state, sent.waiting_steps, sent.last_error) != (
            now.state,
            now.waiting_steps,
            now.last_error,
        ):
            return True
        assert self._request is not None
        step = max(1, (now.items_total + now.assets_total) // self._request.progress_reports)
        return (now.items_done + now.assets_done) - (sent.items_done + sent.assets_done) >= step

    async def _report(self, *, force: bool = False) -> None:
        assert self._request is not None
        if not force and not self._report_due():
            return
        self._sent = self._progress.model_copy(deep=True)
        report = StagingReport(child_id=workflow.info().workflow_id, progress=self._sent)
        await workflow.get_external_workflow_handle(self._request.report_to).signal(STAGING_PROGRESS_SIGNAL, report)
