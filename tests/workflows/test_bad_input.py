"""Bad input, for every workflow, sent as raw JSON the way `temporal workflow start --input` or the UI send it: a
specific message, a non-retryable failure within seconds, and nothing staged or written."""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from rs_ondemand.config import Settings
from rs_ondemand.dpr.registry import get_tasktable
from rs_ondemand.names import AUXIP_STAGING, CADIP_STAGING, DPR_PROCESSING, PRIP_STAGING

OWNER = "mallory"
COLLECTION = "bad-input-target"

CADIP = {
    "env": {"owner_id": OWNER},
    "cadip_collection_identifier": "cadip",
    "session_identifier": "S1A_20241114143038056552",
    "catalog_collection_identifier": COLLECTION,
}
PRIP = {
    "env": {"owner_id": OWNER},
    "start_datetime": "2025-08-07T11:51:12.509Z",
    "end_datetime": "2025-08-08T00:00:00Z",
    "product_type": "S01SIWSLC",
    "prip_collection": "prip",
    "catalog_collection_identifier": COLLECTION,
}
AUXIP = {key: value for key, value in PRIP.items() if key != "prip_collection"} | {"product_type": "AUX_RESORB"}
DPR: dict[str, Any] = {
    "env": {"owner_id": OWNER},
    "processor_name": "demo",
    "dask_cluster_label": "local",
    "pipeline": "demo_full",
    "input_products": [{"CADU": ["S1A_20241114143038056552", "bad-input-sessions"]}],
    "generated_product_to_collection_identifier": [{"DEMOL0": ["S01DEMOL0", COLLECTION]}],
    "auxiliary_product_to_collection_identifier": {"*": COLLECTION},
    "start_datetime": "2024-11-14T14:30:38.477Z",
    "end_datetime": "2024-11-14T14:33:22.662Z",
    "satellite": "sentinel-1a",
}


def table(**changes: Any) -> dict[str, Any]:
    """The demo task table with top-level keys replaced (None deletes)."""
    tasktable = copy.deepcopy(get_tasktable("demo"))
    for key, value in changes.items():
        if value is None:
            del tasktable[key]
        else:
            tasktable[key] = value
    return tasktable


def with_unit(**entry: Any) -> dict[str, Any]:
    tasktable = table()
    tasktable["units"][0] |= entry
    return tasktable


def without_mandatory() -> dict[str, Any]:
    tasktable = table()
    del tasktable["units"][0]["input_adfs"][0]["mandatory"]
    return tasktable


def with_orbit_parameter(**parameters: Any) -> dict[str, Any]:
    tasktable = table()
    orbit = next(entry for entry in tasktable["io"] if entry["name"] == "ORBIT")
    orbit["alternatives"][0]["query"]["parameters"] |= parameters
    return tasktable


def with_query(**stac: Any) -> dict[str, Any]:
    tasktable = table()
    tasktable["queries"][0]["stac"] |= stac
    return tasktable


def bad(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """`base` with keys changed (None deletes)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


CASES: list[tuple[str, str, dict[str, Any], str]] = [
    # --- identifiers that become S3 keys and URL segments
    ("traversal session id", CADIP_STAGING, bad(CADIP, session_identifier="../../etc/passwd"), "not a safe identifier"),
    ("odd characters", CADIP_STAGING, bad(CADIP, session_identifier="S1A_1 OR 1=1"), "not a safe identifier"),
    ("slash in collection", CADIP_STAGING, bad(CADIP, catalog_collection_identifier="a/b"), "not a safe identifier"),
    ("oversize id", CADIP_STAGING, bad(CADIP, session_identifier="S" * 300), "not a safe identifier"),
    ("traversal owner", CADIP_STAGING, bad(CADIP, env={"owner_id": "../root"}), "String should match pattern"),
    ("missing field", CADIP_STAGING, bad(CADIP, session_identifier=None), "Field required"),
    ("misspelt key", CADIP_STAGING, bad(CADIP, sesion_identifier="x"), "Extra inputs are not permitted"),
    ("misspelt option", CADIP_STAGING, bad(CADIP, options={"step_atempts": 2}), "options.step_atempts\n  Extra inputs"),
    ("unknown session", CADIP_STAGING, bad(CADIP, session_identifier="S1A_00000000000000000000"), "No Cadip session"),
    # --- windows and CQL2 values
    ("reversed window", PRIP_STAGING, bad(PRIP, end_datetime="2025-08-01"), "must be after start_datetime"),
    ("malformed datetime", PRIP_STAGING, bad(PRIP, start_datetime="2025-13-45"), "is not an ISO 8601"),
    (
        "CQL2 injection in product type",
        PRIP_STAGING,
        bad(PRIP, product_type="S01SIWSLC' OR '1'='1"),
        "String should match pattern",
    ),
    ("CQL2 JSON as product type", AUXIP_STAGING, bad(AUXIP, product_type='{"op":"or"}'), "should match pattern"),
    ("traversal AUXIP collection", AUXIP_STAGING, bad(AUXIP, auxip_collection="../x"), "not a safe identifier"),
    ("reversed AUXIP window", AUXIP_STAGING, bad(AUXIP, start_datetime="2026-01-01"), "must be after"),
    # --- DPR requests
    ("unknown processor", DPR_PROCESSING, bad(DPR, processor_name="nosuch"), 'Unknown processor "nosuch"'),
    ("pipeline and unit", DPR_PROCESSING, bad(DPR, unit="DemoL0Unit"), "Exactly one of 'pipeline' or 'unit'"),
    ("neither pipeline nor unit", DPR_PROCESSING, bad(DPR, pipeline=None), "Exactly one of 'pipeline' or 'unit'"),
    ("unknown pipeline", DPR_PROCESSING, bad(DPR, pipeline="nosuch_full"), 'Pipeline "nosuch_full" not found'),
    ("unknown unit", DPR_PROCESSING, bad(DPR, pipeline=None, unit="NoUnit"), 'Unit "NoUnit" not found in "units"'),
    (
        "empty output map",
        DPR_PROCESSING,
        bad(DPR, generated_product_to_collection_identifier=[]),
        "'generated_product_to_collection_identifier' must not be empty.",
    ),
    (
        "empty ADF map",
        DPR_PROCESSING,
        bad(DPR, auxiliary_product_to_collection_identifier={}),
        "'auxiliary_product_to_collection_identifier' must not be empty.",
    ),
    ("empty inputs", DPR_PROCESSING, bad(DPR, input_products=[]), "'input_products' must not be empty."),
    (
        "traversal input item",
        DPR_PROCESSING,
        bad(DPR, input_products=[{"CADU": ["../x", "c"]}]),
        "not a safe identifier",
    ),
    ("unknown input name", DPR_PROCESSING, bad(DPR, input_products=[{"CADUS": ["S1A_1", "c"]}]), "'input_products'"),
    (
        "oversize input list",
        DPR_PROCESSING,
        bad(DPR, input_products=[{f"IN{i}": ["a", "b"]} for i in range(201)]),
        "List should have at most 200 items",
    ),
    ("unknown cluster label", DPR_PROCESSING, bad(DPR, dask_cluster_label="nosuch"), "unknown Dask cluster label"),
    ("payload not on S3", DPR_PROCESSING, bad(DPR, s3_payload_file="/etc/x.yaml"), "String should match pattern"),
    ("input not staged", DPR_PROCESSING, DPR, "is not in catalog collection 'bad-input-sessions'"),
    # --- broken task tables (the original's TaskTableError cases)
    ("no pipelines", DPR_PROCESSING, bad(DPR, tasktable=table(pipelines=None)), 'Missing or invalid "pipelines"'),
    ("units not a list", DPR_PROCESSING, bad(DPR, tasktable=table(units={})), 'Missing or invalid "units" list'),
    ("io not a list", DPR_PROCESSING, bad(DPR, tasktable=table(io="x")), 'Missing or invalid "io" list'),
    ("unit without module", DPR_PROCESSING, bad(DPR, tasktable=with_unit(module=None)), 'missing a valid "module"'),
    ("entry without mandatory", DPR_PROCESSING, bad(DPR, tasktable=without_mandatory()), 'Missing "mandatory"'),
    (
        "CQL2-text injection",
        DPR_PROCESSING,
        bad(DPR, tasktable=with_query(filter="1=1; DROP TABLE items")),
        "the filter is not valid CQL2-text",
    ),
    ("unknown query", DPR_PROCESSING, bad(DPR, tasktable=table(queries=[])), "not found in the task table"),
    (
        "not CQL2",
        DPR_PROCESSING,
        bad(DPR, tasktable=with_query(filter={"op": "=", "args": [{"property": "product:type"}]})),
        "the filter is not valid CQL2-JSON",
    ),
    (
        "unknown variable",
        DPR_PROCESSING,
        bad(DPR, external_variables={"instrument_mod": "IW"}),
        "'external_variables' names ['instrument_mod'], which the task table neither declares nor uses",
    ),
    ("ADF for nothing", DPR_PROCESSING, bad(DPR, adfs={"DEM": "s3://b/dem/"}), "'adfs' supplies ['DEM'], which no"),
    (
        "placeholder of an input not given",
        DPR_PROCESSING,
        bad(DPR, tasktable=with_orbit_parameter(satellite="{SLC.platform}")),
        'the request has no input product "SLC" (it gives: "CADU") to read the property \'platform\' from',
    ),
]


async def test_the_cases_cover_every_workflow() -> None:
    assert {workflow for _, workflow, _, _ in CASES} == {CADIP_STAGING, PRIP_STAGING, AUXIP_STAGING, DPR_PROCESSING}


@pytest.mark.parametrize(
    ("workflow", "request_json", "message"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
async def test_bad_input_fails_at_once_with_a_specific_message(
    client: Client,
    task_queue: str,
    settings: Settings,
    s3: Any,
    workflow: str,
    request_json: dict[str, Any],
    message: str,
) -> None:
    handle = await client.start_workflow(workflow, request_json, id=f"bad-input-{uuid.uuid4()}", task_queue=task_queue)
    with pytest.raises(WorkflowFailureError) as failure:
        await asyncio.wait_for(handle.result(), timeout=60)
    cause = failure.value.cause
    # Input that fails validation fails the workflow itself (pydantic's error, `failure_exception_types`); what
    # activities and children find is a non-retryable application error.
    assert isinstance(cause, ApplicationError) and (cause.non_retryable or cause.type == "ValidationError")
    assert message in str(cause), str(cause)
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED

    listed = await asyncio.to_thread(s3.list_objects_v2, Bucket=settings.s3.rs_bucket, Prefix=f"{OWNER}/")
    assert not listed.get("Contents"), "nothing may be staged"
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(f"{settings.catalog.url}/collections/{COLLECTION}")
    assert response.status_code == 404, "no collection may be created"
