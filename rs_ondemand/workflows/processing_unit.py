"""`ProcessingUnit`: resolve one processing unit of a DPR request, its input products and its ADFs."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.models.dpr import (
        AdfItem,
        AdfSpec,
        AlternativeTried,
        DprProgress,
        InputSpec,
        UnitInput,
        UnitProgress,
        UnitResolution,
    )
    from rs_ondemand.models.progress import State
    from rs_ondemand.models.staging import CatalogItemRef
    from rs_ondemand.names import PROCESSING_UNIT, UNIT_PROGRESS_SIGNAL
    from rs_ondemand.workflows._auxip_query import read_catalog_items, search_auxip_query, stage_auxip_query
    from rs_ondemand.workflows._failures import INVALID_INPUT
    from rs_ondemand.workflows._operator import OperatorControl
    from rs_ondemand.workflows._search_and_stage import SearchAndStage
    from rs_ondemand.workflows._tasks import all_or_first_error


def input_path(item: CatalogItemRef, path_type: str) -> str:
    """The path EOPF reads an input from: the item's folder (the original: the first asset's directory), or
    the asset itself for a `file` input of one asset."""
    hrefs = sorted(item.assets.values())
    if path_type in ("file", "filename") and len(hrefs) == 1:
        return hrefs[0]
    return hrefs[0].rsplit("/", 1)[0] + "/"


@workflow.defn(name=PROCESSING_UNIT, failure_exception_types=INVALID_INPUT)
class ProcessingUnit(OperatorControl):
    """Resolve one unit: its request inputs become catalog paths, and each of its ADFs is searched through its
    alternatives in `order` (ADFs concurrently, alternatives one after the other). An alternative is bounded by
    its own `timeout_seconds` (search and staging together); an empty or timed-out one moves on to the next; the
    first non-empty one wins and is staged into its collection. Nothing found: a mandatory ADF fails the unit, an
    optional one is skipped with a warning. In a dry run, alternatives are searched but nothing is staged.

    Query: `progress` (with every alternative tried). Signals: `retry`, `cancel`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._progress: DprProgress = DprProgress()  # the base's Progress, with the ADF alternatives
        self._reported: tuple[object, ...] = ()
        self._stager = SearchAndStage(self)

    @workflow.run
    async def run(self, request: UnitInput) -> UnitResolution:
        self._options = request.options
        self._waits_for_operator = not request.dry_run
        parent = workflow.info().parent
        if parent is not None:
            # No reference kept: the workflow's event loop holds every task it runs until it ends.
            asyncio.create_task(self._report_to(parent.workflow_id, request.plan.name))  # noqa: RUF006
        return await self._stager.run_request(f"resolving unit {request.plan.name!r}", self._resolve(request))

    async def _resolve(self, request: UnitInput) -> UnitResolution:
        plan = request.plan
        resolution = UnitResolution(name=plan.name)
        self._set_state(State.SEARCHING, f"reading the inputs of {plan.name}")
        for spec in plan.inputs:
            item = await self._input_item(spec, request.env.owner_id)
            resolution.input_paths[spec.name] = input_path(item, spec.path_type)
            resolution.input_items.append(AdfItem(collection=item.collection, id=item.id))
        self._set_state(State.RESOLVING_ADFS, f"resolving {len(plan.adfs)} ADFs of {plan.name}")
        found = await all_or_first_error([self._resolve_adf(adf, request) for adf in plan.adfs])
        resolution.adfs = {adf.name: items for adf, items in zip(plan.adfs, found, strict=True) if items}
        resolution.alternatives = list(self._progress.alternatives)
        resolution.warnings = list(self._progress.warnings)
        return resolution

    async def _input_item(self, spec: InputSpec, owner_id: str) -> CatalogItemRef:
        items = await self._step(
            f"read input {spec.name}", lambda: read_catalog_items(self, owner_id, spec.collection, [spec.item_id])
        )
        if not items or not items[0].assets:
            raise ApplicationError(
                f"Input product {spec.name!r}: item {spec.item_id!r} is not in catalog collection "
                f"{spec.collection!r}, or has no asset (stage it first)",
                type="NotFoundError",
                non_retryable=True,
            )
        return items[0]

    async def _resolve_adf(self, adf: AdfSpec, request: UnitInput) -> list[AdfItem]:
        """The items of the first alternative that finds any; [] for an optional ADF that has none."""
        if adf.supplied is not None:
            return [adf.supplied]  # the request's own: nothing to search
        unit = request.plan.name
        for index, alternative in enumerate(adf.alternatives, start=1):
            started = workflow.now()
            key = f"{adf.name}-{index}"
            query, collection, timeout = alternative.query, alternative.collection, alternative.timeout_seconds
            if request.dry_run:
                outcome = await search_auxip_query(self._stager, query, request.env, collection, timeout, key)
            else:
                outcome = await stage_auxip_query(self._stager, query, request.env, collection, timeout, key)
            self._progress.alternatives.append(
                AlternativeTried(
                    unit=unit,
                    adf=adf.name,
                    order=alternative.order,
                    product_type=alternative.product_type,
                    collection=alternative.collection,
                    query=alternative.query,
                    outcome="timed_out" if outcome.timed_out else "found" if outcome.items else "empty",
                    items=[item.id for item in outcome.items],
                    duration_s=round((workflow.now() - started).total_seconds(), 3),
                )
            )
            if outcome.items:
                return [
                    AdfItem(collection=item.collection, id=item.id, hrefs=sorted(item.assets.values()))
                    for item in outcome.items
                ]
        tried = "; ".join(
            f"{a.product_type or '?'} in {a.collection}: {a.outcome.replace('_', ' ')}"
            for a in self._progress.alternatives
            if a.unit == unit and a.adf == adf.name
        )
        why = f"alternatives tried: {tried}" if adf.alternatives else "the task table gives it no alternative"
        if adf.mandatory:
            raise ApplicationError(
                f"Searching for adfs input {adf.name} of unit {unit} did not return any result ({why})",
                type="AdfNotFoundError",
                non_retryable=True,
            )
        self._progress.warnings.append(f"optional ADF {adf.name} of unit {unit} skipped: nothing found ({why})")
        return []

    async def _report_to(self, parent_id: str, unit: str) -> None:
        """Tell the parent whenever the state, the error or the alternatives tried change."""
        parent = workflow.get_external_workflow_handle(parent_id)
        while True:
            await workflow.wait_condition(lambda: self._snapshot() != self._reported)
            self._reported = self._snapshot()
            report = UnitProgress(unit=unit, progress=self._progress, alternatives=self._progress.alternatives)
            await parent.signal(UNIT_PROGRESS_SIGNAL, report)

    def _snapshot(self) -> tuple[object, ...]:
        progress = self._progress
        return (progress.state, progress.last_error, len(progress.alternatives), len(progress.warnings))
