"""The starter: request-derived workflow ids, duplicate requests attached to one run, the real CLI."""

from __future__ import annotations

import asyncio
import json

from temporalio.client import Client

from rs_ondemand.config import Settings
from rs_ondemand.models.staging import PripStagingInput, WindowStagingResult
from rs_ondemand.names import PRIP_STAGING
from rs_ondemand.starter._run import start
from rs_ondemand.starter.request_ids import prip_workflow_id
from tests.support.prip import WINDOW, add_prip_products
from tests.support.stack import Simulator, run_cli


def prip(start: str, end: str, collection: str = "c", product_type: str = "S01SIWSLC") -> PripStagingInput:
    return PripStagingInput.model_validate(
        {
            "env": {"owner_id": "alice"},
            "start_datetime": start,
            "end_datetime": end,
            "product_type": product_type,
            "prip_collection": "prip",
            "catalog_collection_identifier": collection,
        }
    )


async def test_two_identical_concurrent_requests_are_one_execution(
    client: Client, task_queue: str, settings: Settings, simulator: Simulator, collection: str
) -> None:
    product_type = add_prip_products(simulator, 3)
    request = prip(WINDOW[0].isoformat(), WINDOW[1].isoformat(), collection, product_type)
    on_test_queue = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"task_queue": task_queue})}
    )
    (_, first), (_, second) = await asyncio.gather(
        *(start(on_test_queue, PRIP_STAGING, request, prip_workflow_id(request), WindowStagingResult) for _ in "ab")
    )
    assert first.result_run_id == second.result_run_id
    result = await first.result()
    assert result.staging.items_staged == 3
    executions = [w async for w in client.list_workflows(f'WorkflowId = "{prip_workflow_id(request)}"')]
    assert len(executions) == 1


async def test_stage_prip_command_runs_a_request_to_the_end(
    task_queue: str, simulator: Simulator, collection: str
) -> None:
    """`rs-ondemand stage prip … --wait` prints the id, a UI link, its progress, then the result as JSON."""
    product_type = add_prip_products(simulator, 2)
    window = ["--start", WINDOW[0].isoformat(), "--end", WINDOW[1].isoformat()]
    code, out, err = await run_cli(
        "stage",
        "prip",
        *window,
        "--product-type",
        product_type,
        "--catalog-collection",
        collection,
        "--owner",
        "bob",
        "--wait",
        RS_TASK_QUEUE=task_queue,
    )
    assert code == 0, err
    assert f"workflow id: prip-staging/bob/{collection}/prip/{product_type}/" in err
    assert json.loads(out)["staging"]["items_staged"] == 2
    # Without a terminal, a line per change of state, ending with the outcome (it printed nothing till the end).
    changes = [line for line in err.splitlines() if line[:2].isdigit() and " | " in line]
    assert len(changes) >= 2 and changes[-1].split(" | ")[1].startswith("COMPLETED: completed")


async def test_stage_command_refuses_bad_input_in_one_line(task_queue: str) -> None:
    code, out, err = await run_cli(
        "stage",
        "prip",
        "--start",
        "2025-08-10",
        "--end",
        "2025-08-07",
        "--product-type",
        "X",
        RS_TASK_QUEUE=task_queue,
    )
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()  # one line, no traceback
    assert line.startswith("error: invalid request:") and "must be after start_datetime" in line
