"""A test-only workflow calling the reusable AUXIP-staging step, as the DPR ProcessingUnit will."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.models.common import FlowEnv
    from rs_ondemand.models.staging import QueryStagingOutcome, StacQuery
    from rs_ondemand.workflows._auxip_query import stage_auxip_query
    from rs_ondemand.workflows._operator import OperatorControl
    from rs_ondemand.workflows._search_and_stage import SearchAndStage


class AuxipQueryInput(BaseModel):
    query: StacQuery
    collection: str
    timeout_seconds: int


@workflow.defn(name="TestAuxipQuery")
class AuxipQueryWorkflow(OperatorControl):
    def __init__(self) -> None:
        super().__init__()
        self._stager = SearchAndStage(self)

    @workflow.run
    async def run(self, request: AuxipQueryInput) -> QueryStagingOutcome:
        return await stage_auxip_query(
            self._stager,
            request.query,
            FlowEnv(owner_id="dave"),
            request.collection,
            request.timeout_seconds,
            key="adf-1",
        )
