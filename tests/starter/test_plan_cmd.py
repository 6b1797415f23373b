"""`rs-ondemand plan dpr`: the units without any stack, the ADF choices and payload from a dry run with one."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from pystac.utils import str_to_datetime
from temporalio.client import Client, WorkflowExecutionStatus

from rs_ondemand.activities.catalog_client import CatalogClient
from rs_ondemand.config import Settings
from rs_ondemand.dpr.registry import get_tasktable
from rs_ondemand.dpr.units import build_unit_list
from rs_ondemand.models.dpr import DprProcessIn
from rs_ondemand.models.staging import CadipStagingInput, CadipStagingResult
from rs_ondemand.names import CADIP_STAGING
from tests.support import s1_ard
from tests.support.sample_requests import stage_sample_session
from tests.support.stack import Simulator, run_cli

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
DEMO = SAMPLES / "dpr-demo.json"


def no_stack(tmp_path: Path) -> dict[str, str]:
    """Environment of a machine without a stack: nothing listens on the Temporal address, no .stack/env."""
    return {"TEMPORAL_ADDRESS": "127.0.0.1:1", "RS_STACK_DIR": str(tmp_path / "no-stack")}


def demo_request(**changes: Any) -> dict[str, Any]:
    return json.loads(DEMO.read_text()) | changes


def expected_units(request: dict[str, Any], tasktable: dict[str, Any]) -> list[dict[str, Any]]:
    parsed = DprProcessIn.model_validate(request)
    units = build_unit_list(tasktable, parsed.pipeline, parsed.unit, None, external_variables=parsed.variables())
    return json.loads(json.dumps(units))


def write(tmp_path: Path, name: str, value: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(value))
    return str(path)


async def test_without_a_stack_the_units_are_planned_from_the_task_table(tmp_path: Path) -> None:
    code, out, err = await run_cli("plan", "dpr", str(DEMO), "--json", **no_stack(tmp_path))
    assert code == 0, err
    planned = json.loads(out)
    assert set(planned) == {"units", "adfs", "variables", "input_properties", "unresolved", "warnings"}
    assert planned["variables"]["satellite"] == "sentinel-1a" and planned["unresolved"] == []
    assert planned["units"] == expected_units(demo_request(), get_tasktable("demo"))
    (orbit,) = planned["adfs"]
    assert (orbit["unit"], orbit["adf"], orbit["mandatory"]) == ("DemoL0Unit.1", "ORBIT", True)
    assert [(a["product_type"], a["collection"]) for a in orbit["alternatives"]] == [
        ("AUX_POEORB", "s1-aux"),
        ("AUX_RESORB", "s1-aux"),
    ]
    # The STAC query with the request's window substituted (± dTa/dTb of the first alternative: 5 days).
    assert "2024-11-09T14:30:38.477Z" in json.dumps(orbit["alternatives"][0]["query"]["filter"])
    assert "stack not reachable at 127.0.0.1:1" in err and "Traceback" not in err


async def test_a_tasktable_file_replaces_the_registry_table(tmp_path: Path) -> None:
    table = copy.deepcopy(get_tasktable("demo"))
    table["units"][0]["module"] = "my_processor.units"
    orbit = next(entry for entry in table["io"] if entry["name"] == "ORBIT")
    orbit["alternatives"] = orbit["alternatives"][1:]  # only the restituted orbit
    code, out, err = await run_cli(
        "plan", "dpr", str(DEMO), "--tasktable", write(tmp_path, "table.json", table), "--json", **no_stack(tmp_path)
    )
    assert code == 0, err
    planned = json.loads(out)
    assert planned["units"] == expected_units(demo_request(), table)
    assert planned["units"][0]["module"] == "my_processor.units"
    assert [a["product_type"] for a in planned["adfs"][0]["alternatives"]] == ["AUX_RESORB"]


async def test_the_readable_summary_without_a_stack(tmp_path: Path) -> None:
    code, out, err = await run_cli("plan", "dpr", str(DEMO), **no_stack(tmp_path))
    assert code == 0, err
    assert "DemoL0Unit" in out and "ADF ORBIT" in out and "AUX_POEORB" in out and "AUX_RESORB" in out


async def test_a_request_of_pipeline_and_unit_is_refused_in_one_line(tmp_path: Path) -> None:
    request = write(tmp_path, "bad.json", demo_request(unit="DemoL0Unit"))
    code, out, err = await run_cli("plan", "dpr", request, "--json", **no_stack(tmp_path))
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("error: invalid request:")
    assert "Exactly one of 'pipeline' or 'unit' must be provided." in line


async def test_an_unknown_processor_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    request = write(tmp_path, "unknown.json", demo_request(processor_name="nosuch"))
    code, out, err = await run_cli("plan", "dpr", request, **no_stack(tmp_path))
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith('error: Unknown processor "nosuch". Available processors:') and '"demo"' in line


async def test_a_request_that_does_not_fit_the_task_table_is_refused(tmp_path: Path) -> None:
    request = write(tmp_path, "mismatch.json", demo_request(input_products=[{"NOSUCH": ["x", "c"]}]))
    code, out, err = await run_cli("plan", "dpr", request, **no_stack(tmp_path))
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert "'input_products' names ['NOSUCH']" in line


async def test_with_the_stack_a_dry_run_adds_the_adf_choices_and_the_payload(
    client: Client, task_queue: str, stack_env: dict[str, str]
) -> None:
    """The sample as it is: its session staged first (as `rs-ondemand demo` does), then the plan's dry run finds
    no precise orbit and takes the restituted one; EOPF validates the payload; nothing is staged or published."""
    sample = DprProcessIn.model_validate_json(DEMO.read_text())
    ((session, collection),) = sample.input_items().values()
    await client.execute_workflow(
        CADIP_STAGING,
        CadipStagingInput(
            env=sample.env,
            cadip_collection_identifier="cadip",
            session_identifier=session,
            catalog_collection_identifier=collection,
        ),
        id=f"test-plan-stage-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=CadipStagingResult,
    )

    code, out, err = await run_cli("plan", "dpr", str(DEMO), "--json", RS_TASK_QUEUE=task_queue)
    assert code == 0, err
    planned = json.loads(out)
    assert planned["units"] == expected_units(demo_request(), get_tasktable("demo"))
    (choice,) = planned["adf_choices"]
    assert (choice["unit"], choice["adf"]) == ("DemoL0Unit.1", "ORBIT")
    assert [(tried["product_type"], tried["outcome"]) for tried in choice["tried"]] == [
        ("AUX_POEORB", "empty"),
        ("AUX_RESORB", "found"),
    ]
    assert choice["winner"]["product_type"] == "AUX_RESORB" and len(choice["winner"]["items"]) == 1
    assert planned["warnings"] == []
    assert "triggering__dry_run: true" in planned["payload_yaml"]
    # EOPF checks the payload's paths: the orbit is found but not staged by a plan, so unless an earlier run staged
    # it, EOPF refuses its path, and the plan says so instead of failing.
    validation = planned["eopf_validation"]
    if validation["processor_status"] == "invalid":
        assert validation["ok"] is False
        assert "ORBIT adf is requested for ['DemoL0Unit.1.ORBIT'] but its path is not available" in validation["error"]
    else:
        assert validation == {"ok": True, "processor_status": "dry_run"}
    assert planned["dry_run_workflow_id"].startswith("plan-dpr-processing/operator/demo/demo_full/")
    assert f"workflow id: {planned['dry_run_workflow_id']}" in err


async def test_a_plan_says_what_it_retries_and_an_interrupted_plan_cancels_its_dry_run(
    client: Client, task_queue: str, stack_env: dict[str, str], simulator: Simulator
) -> None:
    """The AUXIP down: the dry run's ADF search is retried (said on stderr, not minutes of silence); Ctrl-C then
    ends the command (exit code 130) and cancels the dry run instead of leaving it waiting."""
    sample = DprProcessIn.model_validate_json(DEMO.read_text())
    ((_, collection),) = sample.input_items().values()
    await stage_sample_session(client, task_queue, sample.env.owner_id, collection)
    simulator.faults(auxip={"outage": True})
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("rs-ondemand")),
        "plan",
        "dpr",
        str(DEMO),
        env={**os.environ, "RS_TASK_QUEUE": task_queue},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    said = []
    async with asyncio.timeout(120):
        while not any("dry run retrying after: search_station" in line for line in said):
            said.append((await process.stderr.readline()).decode())
    (workflow_id,) = [line.removeprefix("workflow id: ").strip() for line in said if line.startswith("workflow id:")]
    process.send_signal(signal.SIGINT)
    await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 130
    described = await client.get_workflow_handle(workflow_id).describe()
    assert described.status == WorkflowExecutionStatus.CANCELED


async def test_with_the_stack_the_input_products_properties_come_from_the_catalog(
    client: Client, task_queue: str, stack_env: dict[str, str], settings: Settings, collection: str, tmp_path: Path
) -> None:
    """The RS S1 ARD request: its ADF queries read `{slcs.start_datetime}`, `{slcs.platform}`... from the input
    product's catalog item; the plan shows them with the request's variables. (Its units are not installed: EOPF
    refuses the dry run's payload, which the plan reports.)"""
    async with httpx.AsyncClient() as http:
        catalog = CatalogClient(settings.catalog, http)
        await catalog.ensure_collection(collection)
        await catalog.create_item(collection, slc_item(collection))
    request = s1_ard.rs_request(
        "ARD_DEM_ONLY_PIPELINE",
        input_products=[{"name": "slcs", "item_id": s1_ard.SLC_ITEM[0], "collection_name": collection}],
        dask_cluster_name="local",
    )
    code, out, err = await run_cli(
        "plan", "dpr", write(tmp_path, "ard.json", request), "--json", "--timeout", "120", RS_TASK_QUEUE=task_queue
    )
    assert code == 0, err
    planned = json.loads(out)
    assert planned["unresolved"] == []
    properties = planned["input_properties"]["slcs"]
    assert sorted(properties) == ["end_datetime", "platform", "start_datetime"]
    assert properties["platform"] == "sentinel-1a"
    for key in ("start_datetime", "end_datetime"):  # as the catalog writes them (to the microsecond)
        assert str_to_datetime(properties[key]) == str_to_datetime(s1_ard.SLC_PROPERTIES[key])
    assert planned["variables"] == {"satellite": "sentinel-1a", "instrument_mode": "IW", "reference_date": "2024-11-14"}
    etad = next(adf for adf in planned["adfs"] if adf["adf"] == "ETAD")
    assert "2024-11-14T14:30:38.477Z" in json.dumps(etad["alternatives"][0]["query"])
    assert planned["eopf_validation"]["ok"] is False
    assert "Module s1_ard.computing.ard_processing_units not found" in planned["eopf_validation"]["error"]


def slc_item(collection: str) -> dict[str, Any]:
    """The input product of the S1 ARD request, as the catalog would have it."""
    item_id, _ = s1_ard.SLC_ITEM
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": item_id,
        "collection": collection,
        "geometry": {"type": "Point", "coordinates": [0.0, 0.0]},
        "bbox": [0.0, 0.0, 0.0, 0.0],
        "properties": dict(s1_ard.SLC_PROPERTIES),
        "assets": {"slc.zarr": {"href": f"s3://rs-cluster-catalog/ops/{collection}/{item_id}/slc.zarr"}},
        "links": [],
    }
