"""The reusable AUXIP-staging step run through the test-only `AuxipQueryWorkflow`: the newest file of a type
valid over the sample session's window."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from temporalio.client import Client

from rs_ondemand.cql2_filters import valcover_filter
from rs_ondemand.models.staging import QueryStagingOutcome, StacQuery
from tests.support.auxip_query_workflow import AuxipQueryInput, AuxipQueryWorkflow

SESSION_TIME = (datetime(2024, 11, 14, 14, 30, tzinfo=UTC), datetime(2024, 11, 14, 14, 35, tzinfo=UTC))
NEWEST_FIRST = [{"field": "created", "direction": "desc"}]


async def run_query(client: Client, queue: str, product_type: str, timeout_seconds: int) -> QueryStagingOutcome:
    request = AuxipQueryInput(
        query=StacQuery(filter=valcover_filter(*SESSION_TIME, product_type), sortby=NEWEST_FIRST, limit=1),
        collection=f"test-{uuid.uuid4().hex[:10]}",
        timeout_seconds=timeout_seconds,
    )
    return await client.execute_workflow(
        AuxipQueryWorkflow.run, request, id=f"test-query-{uuid.uuid4()}", task_queue=queue
    )
