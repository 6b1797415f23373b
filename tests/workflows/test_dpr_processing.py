"""`DprProcessing` on the real stack: a staged CADIP session → the demo processor (real EOPF) → a catalog item."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from rs_ondemand.activities.eopf_process import group_members, recorded_drivers
from rs_ondemand.config import Settings
from rs_ondemand.models.dpr import DprProcessIn, DprProcessResult, DprProgress
from rs_ondemand.models.operator import CancelSignal
from rs_ondemand.models.progress import State
from rs_ondemand.models.staging import AuxipStagingInput, WindowStagingResult
from rs_ondemand.names import AUXIP_STAGING, CANCEL_SIGNAL, DPR_PROCESSING, PROGRESS_QUERY, safe_segment
from tests.support.sample_requests import demo_request, demo_table, stage_sample_session
from tests.support.stack import Simulator, run_cli

SESSION = "S1A_20241114143038056552"
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
DERIVED = "derived_from"
OWNER = "dpr-tester"


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def session_collection(client: Client, task_queue: str) -> str:
    """The real sample session, staged once for the module into a collection of its own."""
    collection = f"dpr-cadip-{uuid.uuid4().hex[:8]}"
    await stage_sample_session(client, task_queue, OWNER, collection)
    return collection


async def stage_auxip(client: Client, task_queue: str, product_type: str, collection: str) -> list[str]:
    """The AUXIP files of `product_type` valid over the session's window, staged by `OnDemandAuxipStaging`
    into `collection`; returns their item ids."""
    request = AuxipStagingInput.model_validate(
        {
            "env": {"owner_id": OWNER},
            "start_datetime": "2024-11-14T14:30:38.477Z",
            "end_datetime": "2024-11-14T14:33:22.662Z",
            "product_type": product_type,
            "catalog_collection_identifier": collection,
        }
    )
    result = await client.execute_workflow(
        AUXIP_STAGING,
        request,
        id=f"test-dpr-aux-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=WindowStagingResult,
    )
    return sorted(result.staging.staged + result.staging.skipped)


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def orbit_collection(client: Client, task_queue: str) -> str:
    """The restituted orbits of the session's window, staged once by `OnDemandAuxipStaging`."""
    collection = f"dpr-aux-{uuid.uuid4().hex[:8]}"
    await stage_auxip(client, task_queue, "AUX_RESORB", collection)
    return collection


def dpr_request(session_collection: str, **changes: Any) -> DprProcessIn:
    return demo_request(OWNER, session_collection, **changes)


async def start(client: Client, task_queue: str, request: DprProcessIn) -> WorkflowHandle[Any, DprProcessResult]:
    return await client.start_workflow(
        DPR_PROCESSING, request, id=f"test-dpr-{uuid.uuid4()}", task_queue=task_queue, result_type=DprProcessResult
    )


def s3_keys(s3: Any, url: str) -> list[str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return [obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


async def test_demo_chain_publishes_a_product_linked_to_its_inputs(
    client: Client, task_queue: str, session_collection: str, settings: Settings, s3: Any
) -> None:
    """The README's chain: the precise orbit (first alternative) is not there for this date, the restituted
    one (second) is staged; EOPF decodes the session; the product is published with its provenance."""
    request = dpr_request(session_collection)
    handle = await start(client, task_queue, request)
    result = await handle.result()

    poeorb, resorb = result.alternatives
    assert (poeorb.product_type, poeorb.outcome, poeorb.items) == ("AUX_POEORB", "empty", [])
    assert (resorb.product_type, resorb.outcome, len(resorb.items)) == ("AUX_RESORB", "found", 1)
    assert result.processor_status == "completed" and result.warnings == []
    (published,) = result.published
    target = request.output_targets()["DEMOL0"][0][1]
    assert published["collection"] == target

    async with httpx.AsyncClient(timeout=30) as http:
        item = (await http.get(f"{settings.catalog.url}/collections/{target}/items/{published['id']}")).json()
    assert item["properties"]["product:type"] == "S01DEMOL0" and item["properties"]["owner"] == OWNER
    (asset,) = item["assets"].values()
    assert asset["href"].startswith(f"s3://{settings.s3.rs_bucket}/{OWNER}/{target}/")
    assert s3_keys(s3, asset["href"].rstrip("/") + "/zarr.json")
    derived = {link["href"].rsplit("/collections/", 1)[1] for link in item["links"] if link["rel"] == "derived_from"}
    aux = request.auxiliary_product_to_collection_identifier["*"]
    assert derived == {f"{session_collection}/items/{SESSION}", f"{aux}/items/{resorb.items[0]}"}
    assert item["properties"]["processing:lineage"].endswith(handle.id)

    progress = await handle.query(PROGRESS_QUERY, result_type=DprProgress)
    assert progress.state == State.COMPLETED and progress.units_done == progress.units_total == 1
    assert [alt.outcome for alt in progress.alternatives] == ["empty", "found"]
    code, out, err = await run_cli("status", handle.id, "--json")
    assert code == 0, err
    shown = json.loads(out)["progress"]
    assert shown == progress.model_dump(mode="json")  # what operators see is the query, alternatives included
    assert not s3_keys(s3, result.s3_payload_file)  # deleted after the run, as RS does


async def test_a_timed_out_alternative_moves_on_to_the_next(
    client: Client, task_queue: str, session_collection: str, simulator: Simulator
) -> None:
    """Every AUXIP request takes 3 s: the 2 s alternative times out, the unbounded one finds the orbit. A dry run:
    nothing is staged, EOPF only validates the payload."""
    table = demo_table(alt0={"timeout_seconds": 2, "parameters": {"product_type": "AUX_RESORB"}})
    simulator.faults(auxip={"latency_ms": 3000})
    request = dpr_request(session_collection, tasktable=table, dry_run=True)
    result = await (await start(client, task_queue, request)).result()

    first, second = result.alternatives
    assert (first.outcome, first.items) == ("timed_out", [])
    assert 2 <= first.duration_s < 10
    assert second.outcome == "found" and second.product_type == "AUX_RESORB"
    assert result.published == []
    assert "triggering__dry_run: true" in result.payload_yaml
    # EOPF's validation checks that ADF files exist: a planned orbit is not staged yet, and the plan says so.
    assert result.processor_status == "invalid"
    assert "ORBIT adf is requested for ['DemoL0Unit.1.ORBIT'] but its path is not available" in str(
        result.validation_error
    )
    # Planned, not staged: the payload names the folder the orbit would be staged to.
    aux = request.auxiliary_product_to_collection_identifier["*"]
    assert f"/{OWNER}/{aux}/{second.items[0]}/" in result.payload_yaml


async def test_a_dry_run_during_a_station_outage_fails_with_the_step_error_instead_of_waiting(
    client: Client, task_queue: str, session_collection: str, simulator: Simulator
) -> None:
    """A plan has no operator: the ADF search that gave up fails it at once (it waited for a `retry`)."""
    simulator.faults(auxip={"outage": True})
    request = dpr_request(session_collection, dry_run=True, options={"step_attempts": 1})
    handle = await start(client, task_queue, request)
    with pytest.raises(WorkflowFailureError) as failure:
        await asyncio.wait_for(handle.result(), timeout=60)
    message = str(failure.value.cause)
    assert "search AUXIP" in message and "503" in message, message
    assert "a dry run does not wait for an operator" in message
    progress = await handle.query(PROGRESS_QUERY, result_type=DprProgress)
    assert progress.state == State.FAILED and progress.waiting_steps == []
    assert progress.last_error and "a dry run does not wait for an operator" in progress.last_error


async def test_a_mandatory_adf_found_nowhere_fails_at_once(
    client: Client, task_queue: str, session_collection: str
) -> None:
    table = demo_table(
        alt0={"parameters": {"product_type": "AUX_NOSUCH"}}, alt1={"parameters": {"product_type": "AUX_NOSUCH"}}
    )
    handle = await start(client, task_queue, dpr_request(session_collection, tasktable=table))
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    message = str(failure.value.cause)
    assert "Searching for adfs input ORBIT of unit DemoL0Unit.1 did not return any result" in message
    assert "AUX_NOSUCH in aux-" in message and message.count(": empty") == 2
    progress = await handle.query(PROGRESS_QUERY, result_type=DprProgress)
    assert progress.state == State.FAILED and len(progress.alternatives) == 2


async def test_an_optional_adf_found_nowhere_is_skipped_with_a_warning(
    client: Client, task_queue: str, session_collection: str, orbit_collection: str, settings: Settings
) -> None:
    """A dry run whose orbit is staged already: EOPF's own validation accepts the payload."""
    table = demo_table()
    unit = table["units"][0]
    unit["input_adfs"].append({"name": "EXTRA", "mode": "always", "mandatory": False})
    extra = copy.deepcopy(next(entry for entry in table["io"] if entry["name"] == "ORBIT"))
    extra["name"] = "EXTRA"
    extra["alternatives"] = extra["alternatives"][1:]
    extra["alternatives"][0]["query"]["parameters"]["product_type"] = "AUX_NOSUCH"
    table["io"].append(extra)
    request = dpr_request(
        session_collection,
        tasktable=table,
        dry_run=True,
        auxiliary_product_to_collection_identifier={"*": orbit_collection},
    )
    result = await (await start(client, task_queue, request)).result()

    assert [(alt.adf, alt.outcome) for alt in result.alternatives if alt.adf == "EXTRA"] == [("EXTRA", "empty")]
    (warning,) = result.warnings
    assert warning.startswith("optional ADF EXTRA of unit DemoL0Unit.1 skipped: nothing found")
    assert "EXTRA" not in result.payload_yaml  # the processor runs without it
    orbit = next(alt for alt in result.alternatives if alt.adf == "ORBIT" and alt.outcome == "found")
    assert f"s3://{settings.s3.rs_bucket}/{OWNER}/{orbit_collection}/{orbit.items[0]}/" in result.payload_yaml
    assert (result.processor_status, result.validation_error) == ("dry_run", None)


async def test_an_unmapped_product_type_fails_and_leaves_no_output(
    client: Client, task_queue: str, session_collection: str, s3: Any, settings: Settings
) -> None:
    """The product is written, but its type has no collection: a clear error, and the run's folder is removed."""
    request = dpr_request(
        session_collection, generated_product_to_collection_identifier=[{"DEMOL0": ["S01OTHERL0", "other"]}]
    )
    handle = await start(client, task_queue, request)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "Product type unknown" in str(failure.value.cause) and "S01DEMOL0" in str(failure.value.cause)
    assert not s3_keys(s3, f"s3://{settings.s3.rs_bucket}/{OWNER}/other/")
    assert not s3_keys(s3, f"s3://{settings.s3.rs_work_bucket}/dpr/{safe_segment(handle.id)}")


@pytest.mark.parametrize("how", ["signal", "native"])
async def test_cancel_during_the_processor_run_leaves_no_process_and_no_output(
    how: str, client: Client, task_queue: str, session_collection: str, s3: Any, settings: Settings
) -> None:
    """The `cancel` signal and `temporal workflow cancel` alike: EOPF's process group is killed, the run's
    outputs and payload are removed."""
    table = demo_table()
    table["pipelines"][0]["steps"][0]["parameters"]["hold_seconds"] = 120
    request = dpr_request(session_collection, tasktable=table)
    handle = await start(client, task_queue, request)
    async with asyncio.timeout(180):
        while True:  # until the processor runs and its EOPF process is there
            progress = await handle.query(PROGRESS_QUERY, result_type=DprProgress)
            if progress.step.startswith("running") and (drivers := recorded_drivers(handle.id)):
                break
            await asyncio.sleep(0.5)
    await asyncio.sleep(3)  # the unit is holding: its LocalCluster is up
    if how == "signal":
        await handle.signal(CANCEL_SIGNAL, CancelSignal(reason="test"))
    else:
        await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    progress = await handle.query(PROGRESS_QUERY, result_type=DprProgress)
    assert progress.state == State.CANCELLED
    assert [pid for driver in drivers for pid in group_members(driver)] == []
    target = request.output_targets()["DEMOL0"][0][1]
    assert not s3_keys(s3, f"s3://{settings.s3.rs_bucket}/{OWNER}/{target}/")
    assert not s3_keys(s3, f"s3://{settings.s3.rs_work_bucket}/dpr/{safe_segment(handle.id)}")


async def test_a_request_of_pipeline_and_unit_fails_at_once_with_the_original_message(
    client: Client, task_queue: str
) -> None:
    raw = dpr_request("c").model_dump(mode="json") | {"unit": "DemoL0Unit"}
    handle = await client.start_workflow(DPR_PROCESSING, raw, id=f"test-dpr-{uuid.uuid4()}", task_queue=task_queue)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "Exactly one of 'pipeline' or 'unit' must be provided." in str(failure.value.cause)


async def test_two_units_sharing_an_adf_resolve_it_once_and_both_publish(
    client: Client, task_queue: str, session_collection: str, settings: Settings
) -> None:
    """A two-step pipeline whose units both need the orbit: the units are resolved one after the other, so the
    second finds the first's staged orbit in the catalog; EOPF runs both units; both products are published."""
    table = demo_table()
    second = copy.deepcopy(table["units"][0])
    second["name"] = "DemoL0Unit.2"  # the same processing-unit class, a second step
    # The unit names its output DEMOL0; the step's `regex` routes it to this step's own output.
    second["output_products"][0] |= {"name": "DEMOL0B", "regex": "DEMOL0"}
    table["units"].append(second)
    table["io"].append({**next(e for e in table["io"] if e["name"] == "DEMOL0"), "name": "DEMOL0B"})
    step = copy.deepcopy(table["pipelines"][0]["steps"][0])
    step |= {"unit_name": "DemoL0Unit.2", "step_id": 2, "output_products": {"DEMOL0B": "pipeline_output"}}
    table["pipelines"][0]["steps"].append(step)
    tag = uuid.uuid4().hex[:8]
    request = dpr_request(
        session_collection,
        tasktable=table,
        generated_product_to_collection_identifier=[
            {"DEMOL0": ["S01DEMOL0", f"first-{tag}"]},
            {"DEMOL0B": ["S01DEMOL0", f"second-{tag}"]},
        ],
    )
    handle = await start(client, task_queue, request)
    result = await handle.result()

    orbit = [(alt.unit, alt.product_type, alt.outcome) for alt in result.alternatives if alt.outcome == "found"]
    assert orbit == [("DemoL0Unit.1", "AUX_RESORB", "found"), ("DemoL0Unit.2.2", "AUX_RESORB", "found")]
    units = [w async for w in client.list_workflows(f"ParentWorkflowId = '{handle.id}'")]
    (first_unit,) = [u for u in units if u.id.endswith("unit-1-DemoL0Unit.1")]
    (second_unit,) = [u for u in units if u.id.endswith("unit-2-DemoL0Unit.2.2")]
    assert first_unit.close_time is not None and second_unit.start_time >= first_unit.close_time
    # The second unit staged nothing: the orbit was in the catalog already.
    staged = [w async for w in client.list_workflows(f"ParentWorkflowId = '{second_unit.id}'")]
    second_results = [await client.get_workflow_handle(w.id).result() for w in staged]
    assert all(not r["staged"] and r["skipped"] for r in second_results), second_results
    assert sorted(p["collection"] for p in result.published) == [f"first-{tag}", f"second-{tag}"]


async def test_the_chained_demo_publishes_every_output_with_what_it_derives_from(
    client: Client, task_queue: str, session_collection: str, settings: Settings, s3: Any
) -> None:
    """samples/dpr-demo-chain.json, as the README runs it (in collections of its own): four units in one EOPF run
    on Dask — the L0 handed over in memory to an L1 and to a quicklook, the quicklook unit again on the L1 — with
    the processing parameters the request supplies (an ADF the task table gives no alternative for). Every
    pipeline output is published, each linked to what its unit read through the chain."""
    sample = json.loads((SAMPLES / "dpr-demo-chain.json").read_text())
    tag = uuid.uuid4().hex[:8]
    parameters = await stage_auxip(client, task_queue, "AUX_PP2", f"dpr-pp2-{tag}")
    ((pp2, _),) = sample["adfs"].values()
    assert pp2 in parameters, f"the sample's PP2 item {pp2!r} is not what `stage auxip` stages: {parameters}"
    request = DprProcessIn.model_validate(
        sample
        | {
            "env": {"owner_id": OWNER},
            "input_products": [{"CADU": [SESSION, session_collection]}],
            "generated_product_to_collection_identifier": [
                {"DEMOL1": ["S01DEMOL1", f"l1-{tag}"]},
                {"QUICKLOOK": ["*", f"ql-{tag}"]},
            ],
            "auxiliary_product_to_collection_identifier": {"*": f"aux-{tag}"},
            "adfs": {"PP2": [pp2, f"dpr-pp2-{tag}"]},
        }
    )
    handle = await start(client, task_queue, request)
    result = await handle.result()

    assert result.processor_status == "completed" and result.warnings == []
    assert [unit["id"] for unit in result.units] == [
        "DemoL0Unit.1",
        "DemoL1Unit.2",
        "DemoQuicklookUnit.3",
        "DemoQuicklookUnit.4",
    ]
    assert sorted(item["collection"] for item in result.published) == [f"l1-{tag}", f"ql-{tag}", f"ql-{tag}"]
    orbit = next(alt for alt in result.alternatives if alt.outcome == "found")
    session = f"{session_collection}/items/{SESSION}"
    orbit_link, pp2_link = f"aux-{tag}/items/{orbit.items[0]}", f"dpr-pp2-{tag}/items/{pp2}"
    expected = {  # product type -> what it derives from
        "S01DEMOL1": {session, orbit_link, pp2_link},
        "S01DEMQL0": {session, orbit_link},  # the L0's quicklook: not the L1's parameters
        "S01DEMQL1": {session, orbit_link, pp2_link},
    }
    async with httpx.AsyncClient(timeout=30) as http:
        for published in result.published:
            url = f"{settings.catalog.url}/collections/{published['collection']}/items/{published['id']}"
            item = (await http.get(url)).json()
            links = {
                link["href"].rsplit("/collections/", 1)[1] for link in item["links"] if link["rel"] == "derived_from"
            }
            assert links == expected.pop(item["properties"]["product:type"]), item["id"]
            (asset,) = item["assets"].values()
            assert s3_keys(s3, asset["href"].rstrip("/") + "/zarr.json")
    assert expected == {}
    progress = await handle.query(PROGRESS_QUERY, result_type=DprProgress)
    assert progress.units_done == progress.units_total == 4
