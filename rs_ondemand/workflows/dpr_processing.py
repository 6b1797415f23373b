"""`DprProcessing`: task table → processing units → ADFs → EOPF payload → processor on Dask → publish."""

from __future__ import annotations

from collections.abc import Awaitable

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.activities.catalog import CatalogActivities
    from rs_ondemand.activities.processor import ProcessorActivities
    from rs_ondemand.dpr.publish import derived_from_by_unit
    from rs_ondemand.models.dpr import (
        AlternativeTried,
        DprProcessIn,
        DprProcessResult,
        DprProgress,
        PreparedPayload,
        PreparePayloadInput,
        ProcessingPlan,
        UnitInput,
        UnitPlan,
        UnitProgress,
        UnitResolution,
    )
    from rs_ondemand.models.processor_run import (
        ItemLink,
        Provenance,
        PublishProductsInput,
        PublishProductsResult,
        RunProcessorInput,
        RunProcessorResult,
    )
    from rs_ondemand.models.progress import State
    from rs_ondemand.names import (
        DPR_PROCESSING,
        UNIT_PROGRESS_SIGNAL,
        processor_task_queue,
        safe_segment,
    )
    from rs_ondemand.search_attributes import RS_MISSION, RS_OWNER, RS_PROCESSOR, RS_SESSION
    from rs_ondemand.workflows import _options
    from rs_ondemand.workflows._failures import INVALID_INPUT, is_cancellation, operator_error
    from rs_ondemand.workflows._lifecycle import remove_empty_collections, run_request
    from rs_ondemand.workflows._operator import OperatorControl
    from rs_ondemand.workflows._tasks import all_or_first_error
    from rs_ondemand.workflows.processing_unit import ProcessingUnit


@workflow.defn(name=DPR_PROCESSING, failure_exception_types=INVALID_INPUT)
class DprProcessing(OperatorControl):
    """Run a DPR processor for a request (docs/rs-compatibility.md#dpr-processing): read the processor's task table and
    build the processing units; resolve every unit in a `ProcessingUnit` child (inputs, ADF alternatives); generate the
    EOPF payload and upload it to `s3_payload_file`; run EOPF on the request's Dask cluster; publish the products to the
    catalog with links back to their inputs; delete the payload.

    A failed processor run or publication waits for an operator (`retry` re-runs that step only). A cancel or
    a failure removes the run's unpublished outputs and its payload; published items stay. A cancel that
    arrives once publication started comes too late: the request completes, and its warnings say so. With
    `dry_run`, the ADFs are searched but not staged, EOPF only validates the payload, nothing is published,
    and a failed step fails the request instead of waiting for an operator.

    Query: `progress` (with every ADF alternative tried). Signals: `retry`, `cancel`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._progress: DprProgress = DprProgress()  # the base's Progress, with the ADF alternatives
        self._unit_ids: dict[str, str] = {}
        self._payload: PreparedPayload | None = None
        self._published = False
        self._collections: list[str] = []
        """Catalog collections the request may create (its outputs', its ADFs'), all of its owner's."""
        self._owner_id = ""

    @workflow.run
    async def run(self, request: DprProcessIn) -> DprProcessResult:
        what = f"processing {request.processor_name!r}"
        return await run_request(self, what, self._process(request), clean_up=self._clean_up)

    async def _process(self, request: DprProcessIn) -> DprProcessResult:
        self._options = request.options
        self._waits_for_operator = not request.dry_run  # a plan answers at once, even if that answer is a failure
        self._upsert_search_attributes(request)
        self._set_state(State.STARTED, f"reading the task table of {request.processor_name}")
        plan: ProcessingPlan = await self._step(
            "read the task table",
            lambda: workflow.execute_activity_method(
                ProcessorActivities.plan_processing,
                request,
                summary=f"task table of {request.processor_name}",
                **_options.PLAN,
            ),
        )
        self._owner_id = request.env.owner_id
        self._collections = [collection for targets in request.output_targets().values() for _, collection in targets]
        adfs = [adf for unit in plan.unit_plans for adf in unit.adfs]
        self._collections += [alternative.collection for adf in adfs for alternative in adf.alternatives]
        self._progress.units_total = len(plan.unit_plans)
        self._progress.warnings += plan.warnings

        self._set_state(State.RESOLVING_ADFS, f"resolving the inputs and ADFs of {len(plan.unit_plans)} units")
        resolutions = await self._resolve_units(plan, request)

        self._set_state(State.PROCESSING, "writing the payload")
        # Unique per run, also when a request's id is reused: outputs and payload go to a folder of their own.
        run_id = f"{workflow.info().workflow_id}-{workflow.info().run_id[-12:]}"
        payload_input = PreparePayloadInput(
            run_id=run_id,
            owner_id=request.env.owner_id,
            s3_payload_file=request.s3_payload_file,
            plan=plan,
            resolutions=resolutions,
            dry_run=request.dry_run,
        )
        self._payload = payload = await self._step(
            "write the payload",
            lambda: workflow.execute_activity_method(
                ProcessorActivities.prepare_payload,
                payload_input,
                summary="EOPF payload",
                **self._with_attempts(_options.CATALOG),
            ),
        )
        self._set_state(State.PROCESSING, f"running {request.processor_name} on {request.dask_cluster_label}")
        run = RunProcessorInput(
            run_id=run_id,
            dask_cluster_label=request.dask_cluster_label,
            s3_payload_file=payload.s3_payload_file,
        )
        ran = await self._run_processor(request, run)
        self._progress.units_done = len(plan.unit_plans) if not request.dry_run else 0

        published = PublishProductsResult(items=[])
        if not request.dry_run:
            self._set_state(State.PUBLISHING, f"publishing {len(ran.written_products)} products")
            published = await self._publish(request, ran, resolutions, plan)
            self._published = True
        await self._delete_payload()
        return DprProcessResult(
            processor_name=request.processor_name,
            dry_run=request.dry_run,
            units=plan.units,
            alternatives=list(self._progress.alternatives),
            warnings=list(self._progress.warnings),
            s3_payload_file=payload.s3_payload_file,
            payload_yaml=payload.payload_yaml,
            processor_status=ran.status,
            validation_error=ran.error,
            processor_trace_id=ran.trace_id,
            published=[{"collection": item.collection, "id": item.item_id} for item in published.items],
        )

    async def _run_processor(self, request: DprProcessIn, run: RunProcessorInput) -> RunProcessorResult:
        def execute() -> Awaitable[RunProcessorResult]:
            return workflow.execute_activity_method(
                ProcessorActivities.run_processor,
                run,
                task_queue=processor_task_queue(workflow.info().task_queue),
                summary=f"EOPF {request.processor_name}",
                **_options.PROCESSOR,
            )

        if not request.dry_run:
            return await self._step("run the processor", execute)
        try:
            return await self._step("validate the payload", execute)
        except (ActivityError, ApplicationError) as err:
            # A plan reports EOPF's verdict: ADFs not staged yet are typically refused (their paths do not exist).
            if is_cancellation(err):
                raise
            return RunProcessorResult(status="invalid", error=operator_error("EOPF validation", err).message)

    def _upsert_search_attributes(self, request: DprProcessIn) -> None:
        attributes = [RS_OWNER.value_set(request.env.owner_id), RS_PROCESSOR.value_set(request.processor_name)]
        if request.satellite:
            attributes.append(RS_MISSION.value_set(request.satellite))
        # The first input product names what is processed (a CADIP session for L0 processors).
        first_input = next(iter(request.input_items().values()))[0]
        attributes.append(RS_SESSION.value_set(first_input))
        workflow.upsert_search_attributes(attributes)

    async def _resolve_units(self, plan: ProcessingPlan, request: DprProcessIn) -> list[UnitResolution]:
        """Units in parallel, unless they share an ADF: then one after the other, so that the second finds the
        first's items in the catalog instead of staging the same objects concurrently (and a failing one's
        cleanup could remove what the other wrote)."""
        names = [adf.name for unit in plan.unit_plans for adf in unit.adfs]
        units = list(enumerate(plan.unit_plans))
        if len(names) == len(set(names)):
            return await all_or_first_error([self._resolve(index, unit, request) for index, unit in units])
        return [await self._resolve(index, unit, request) for index, unit in units]

    async def _resolve(self, index: int, unit_plan: UnitPlan, request: DprProcessIn) -> UnitResolution:
        child_id = f"{workflow.info().workflow_id}/unit-{index + 1}-{safe_segment(unit_plan.name)}"
        self._unit_ids[unit_plan.name] = child_id
        resolution = await workflow.execute_child_workflow(
            ProcessingUnit.run,
            UnitInput(env=request.env, plan=unit_plan, dry_run=request.dry_run, options=request.options),
            id=child_id,
            static_summary=f"unit {unit_plan.name}",
            parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
        )
        self._on_unit_report(UnitProgress(unit=unit_plan.name, progress=DprProgress(state=State.COMPLETED)))
        self._record_alternatives(unit_plan.name, resolution)
        return resolution

    def _record_alternatives(self, unit: str, resolution: UnitResolution) -> None:
        self._replace_alternatives(unit, resolution.alternatives)
        self._progress.warnings = [w for w in self._progress.warnings if w not in resolution.warnings]
        self._progress.warnings += resolution.warnings

    @workflow.signal(name=UNIT_PROGRESS_SIGNAL)
    def _unit_progress(self, report: UnitProgress) -> None:
        if self._on_unit_report(report):
            self._replace_alternatives(report.unit, report.alternatives)

    def _replace_alternatives(self, unit: str, alternatives: list[AlternativeTried]) -> None:
        """A unit's alternatives tried so far, in place of what it reported before."""
        others = [alt for alt in self._progress.alternatives if alt.unit != unit]
        self._progress.alternatives = others + alternatives

    def _on_unit_report(self, report: UnitProgress) -> bool:
        """Take a unit's state; False for a late report of a unit already resolved."""
        child_id = self._unit_ids.get(report.unit)
        if child_id is None or not self._children.take(child_id, report.progress):
            return False
        if self._state == State.RESOLVING_ADFS:
            resolved = self._children.completed()
            self._progress.step = f"resolving the inputs and ADFs of units: {resolved}/{self._progress.units_total}"
        self._show_state()
        return True

    async def _publish(
        self, request: DprProcessIn, ran: RunProcessorResult, resolutions: list[UnitResolution], plan: ProcessingPlan
    ) -> PublishProductsResult:
        sources = [item for unit in resolutions for item in unit.input_items]
        sources += [item for unit in resolutions for items in unit.adfs.values() for item in items]
        unique = {(item.collection, item.id) for item in sources if item.collection}
        links = [ItemLink(collection=collection, item_id=item_id) for collection, item_id in sorted(unique)]
        publish = PublishProductsInput(
            owner_id=request.env.owner_id,
            products=ran.written_products,
            targets=request.output_targets(),
            provenance=Provenance(
                workflow_id=workflow.info().workflow_id,
                processor_name=request.processor_name,
                processor_version=request.processor_version,
                processed_at=workflow.now().isoformat(),
                derived_from=links,
            ),
            derived_from_by_unit=derived_from_by_unit(plan.units, resolutions),
        )
        return await self._step(
            "publish",
            lambda: workflow.execute_activity_method(
                CatalogActivities.publish_products,
                publish,
                summary=f"publish {len(publish.products)} products",
                **self._with_attempts(_options.CATALOG),
            ),
            publishes=True,  # the last step: once it started, the request completes
        )

    async def _delete_payload(self) -> None:
        if self._payload is not None:
            await workflow.execute_activity_method(
                ProcessorActivities.delete_payload,
                self._payload.s3_payload_file,
                summary="delete the payload",
                **_options.CLEANUP,
            )

    async def _clean_up(self) -> None:
        """After a failure or a cancel: the run's unpublished outputs and its payload go, and the collections
        the request created and left empty."""
        if self._payload is not None:
            self._set_state(State.CLEANING_UP, "removing the run's unpublished outputs and payload")
            if not self._published:
                await workflow.execute_activity_method(
                    ProcessorActivities.discard_run_outputs,
                    self._payload.output_prefixes,
                    summary="remove unpublished outputs",
                    **_options.CLEANUP,
                )
            await self._delete_payload()
        await remove_empty_collections(self._owner_id, self._collections)
