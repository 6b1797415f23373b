"""`ProcessingUnit` started directly, as `DprProcessing` starts it: the unit's input product becomes the path of
its staged item, its ADF is found on the AUXIP and staged into its collection (in S3 with its size and MD5, in the
catalog), an optional ADF nobody has is skipped with a warning; a missing input or a mandatory ADF nobody has
fails the unit with a clear error."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from rs_ondemand.config import Settings
from rs_ondemand.cql2_filters import valcover_filter
from rs_ondemand.models.dpr import AdfAlternative, AdfItem, AdfSpec, InputSpec, UnitInput, UnitPlan, UnitResolution
from rs_ondemand.models.staging import StacQuery
from rs_ondemand.names import PROCESSING_UNIT
from tests.support.auxip_query import NEWEST_FIRST, SESSION_TIME
from tests.support.cadip_staging import assert_collection_staged, new_session
from tests.support.stack import Simulator
from tests.support.staging_child import run_staging, session_page

OWNER = "unit-tester"
UNIT = "demo_full.1"


def alternative(product_type: str, collection: str) -> AdfAlternative:
    """The newest AUXIP file of `product_type` valid over the sample session's window."""
    query = StacQuery(filter=valcover_filter(*SESSION_TIME, product_type), sortby=NEWEST_FIRST, limit=1)
    return AdfAlternative(query_name="ValCover", product_type=product_type, collection=collection, query=query)


async def resolve(client: Client, task_queue: str, plan: UnitPlan) -> UnitResolution:
    request = UnitInput.model_validate({"env": {"owner_id": OWNER}, "plan": plan})
    resolution: UnitResolution = await client.execute_workflow(
        PROCESSING_UNIT, request, id=f"test-unit-{uuid.uuid4()}", task_queue=task_queue, result_type=UnitResolution
    )
    return resolution


async def test_the_input_is_resolved_and_the_adf_staged(
    client: Client, task_queue: str, settings: Settings, simulator: Simulator, s3: Any, collection: str
) -> None:
    session = new_session(simulator, 1, chunk_size=16 * 1024)
    _, staged = await run_staging(client, task_queue, OWNER, collection, await session_page(settings, session))
    assert staged.staged == [session]
    aux = f"aux-{uuid.uuid4().hex[:8]}"
    plan = UnitPlan(
        name=UNIT,
        inputs=[InputSpec(name="CADU", item_id=session, collection=collection)],
        adfs=[
            AdfSpec(name="ORBIT", mandatory=True, alternatives=[alternative("AUX_RESORB", aux)]),
            AdfSpec(name="EXTRA", mandatory=False, alternatives=[alternative("NO_SUCH_TYPE", aux)]),
        ],
    )

    resolution = await resolve(client, task_queue, plan)
    bucket = settings.s3.rs_bucket
    assert resolution.input_paths == {"CADU": f"s3://{bucket}/{OWNER}/{collection}/{session}/"}
    assert resolution.input_items == [AdfItem(collection=collection, id=session)]
    assert set(resolution.adfs) == {"ORBIT"}
    (orbit,) = resolution.adfs["ORBIT"]
    assert orbit.collection == aux and orbit.hrefs
    assert all(href.startswith(f"s3://{bucket}/{OWNER}/{aux}/{orbit.id}/") for href in orbit.hrefs)
    (item,) = assert_collection_staged(settings, s3, aux, {orbit.id}, owner=OWNER)  # objects' size and MD5
    assert sorted(asset["href"] for asset in item["assets"].values()) == orbit.hrefs
    assert {(a.adf, a.outcome, tuple(a.items)) for a in resolution.alternatives} == {
        ("ORBIT", "found", (orbit.id,)),
        ("EXTRA", "empty", ()),
    }
    assert [w for w in resolution.warnings if w.startswith(f"optional ADF EXTRA of unit {UNIT} skipped")]


async def test_a_missing_input_or_mandatory_adf_fails_the_unit_clearly(
    client: Client, task_queue: str, collection: str
) -> None:
    not_staged = InputSpec(name="CADU", item_id="S1A_NOT_STAGED", collection=collection)
    missing_input = UnitPlan(name=UNIT, inputs=[not_staged])
    with pytest.raises(WorkflowFailureError) as failure:
        await resolve(client, task_queue, missing_input)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "NotFoundError"
    assert f"item 'S1A_NOT_STAGED' is not in catalog collection {collection!r}" in cause.message

    no_adf = UnitPlan(
        name=UNIT,
        adfs=[AdfSpec(name="ORBIT", mandatory=True, alternatives=[alternative("NO_SUCH_TYPE", "aux-none")])],
    )
    with pytest.raises(WorkflowFailureError) as failure:
        await resolve(client, task_queue, no_adf)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "AdfNotFoundError"
    assert f"adfs input ORBIT of unit {UNIT} did not return any result" in cause.message
