"""Requests several test modules send: the sample CADIP session staged, and a demo DPR request on it (its task
table changed where a test needs it)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from temporalio.client import Client

from rs_ondemand.dpr.registry import get_tasktable
from rs_ondemand.models.dpr import DprProcessIn
from rs_ondemand.models.staging import CadipStagingInput, CadipStagingResult
from rs_ondemand.names import CADIP_STAGING
from rs_ondemand.starter.samples import SAMPLE_SESSION, demo_dpr_request


async def stage_sample_session(client: Client, task_queue: str, owner: str, collection: str) -> str:
    """Stage the simulator's real sample session into `collection`; returns the workflow id."""
    request = CadipStagingInput.for_session(owner, SAMPLE_SESSION, collection)
    workflow_id = f"test-stage-{uuid.uuid4()}"
    await client.execute_workflow(
        CADIP_STAGING, request, id=workflow_id, task_queue=task_queue, result_type=CadipStagingResult
    )
    return workflow_id


def demo_request(owner: str, session_collection: str, **changes: Any) -> DprProcessIn:
    """The demo's DPR request on the staged sample session, with output and ADF collections of its own."""
    tag = uuid.uuid4().hex[:8]
    fields = demo_dpr_request(
        owner, SAMPLE_SESSION, session_collection, output_collection=f"demo-l0-{tag}", aux_collection=f"aux-{tag}"
    )
    return DprProcessIn.model_validate(fields | changes)


def demo_table(**alternative_changes: Any) -> dict[str, Any]:
    """The demo task table, with its ORBIT ADF's alternatives changed (`{index: {key: value}}`)."""
    table = copy.deepcopy(get_tasktable("demo"))
    orbit = next(entry for entry in table["io"] if entry["name"] == "ORBIT")
    for index, changes in alternative_changes.items():
        alternative = orbit["alternatives"][int(index.removeprefix("alt"))]
        parameters = changes.pop("parameters", {})
        alternative.update(changes)
        alternative["query"]["parameters"].update(parameters)
    return table
