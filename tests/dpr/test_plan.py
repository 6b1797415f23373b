"""`plan_request`: a request applied to a task table, checked before anything is staged or run."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rs_ondemand.dpr.plan import RequestMismatchError, plan_request
from rs_ondemand.dpr.queries import AuxCollectionError
from rs_ondemand.dpr.registry import get_tasktable
from rs_ondemand.models.dpr import DprProcessIn
from rs_ondemand.starter.samples import SAMPLE_SESSION, demo_dpr_request
from tests.dpr._fixtures import load

DEMO_REQUEST: dict[str, Any] = demo_dpr_request("ops", SAMPLE_SESSION, "s1-cadip") | {
    "auxiliary_product_to_collection_identifier": {"AUX_RESORB": "orbits", "*": "s1-aux"}
}


def demo(**changes: Any) -> DprProcessIn:
    return DprProcessIn.model_validate(copy.deepcopy(DEMO_REQUEST) | changes)


def test_demo_plan_has_the_inputs_and_both_orbit_alternatives_in_order() -> None:
    plan = plan_request(demo(), get_tasktable("demo"))
    (unit,) = plan.unit_plans
    (cadu,) = unit.inputs
    assert (cadu.name, cadu.item_id, cadu.collection, cadu.path_type) == (
        "CADU",
        "S1A_20241114143038056552",
        "s1-cadip",
        "folder",
    )
    (orbit,) = unit.adfs
    assert orbit.mandatory is True
    first, second = orbit.alternatives
    # The collection rule: map[product_type], then map["*"].
    assert [(a.product_type, a.collection, a.timeout_seconds) for a in orbit.alternatives] == [
        ("AUX_POEORB", "s1-aux", 10),
        ("AUX_RESORB", "orbits", 0),
    ]
    # Standard CQL2: the ±dTa/dTb arithmetic is folded into timestamps (5 days for the precise orbit).
    window = first.query.filter["args"][2]["args"][1]["interval"]  # type: ignore[index]
    assert window == ["2024-11-09T14:30:38.477Z", "2024-11-19T14:33:22.662Z"]
    assert second.query.limit == 1 and second.query.sortby == [{"field": "created", "direction": "desc"}]
    assert plan.output_collections == {"DEMOL0": "s1-demo-l0"}
    assert plan.external_modules == [{"name": "rs_demo_processor.cadu_reader"}]


def test_an_input_name_the_units_do_not_read_is_refused() -> None:
    with pytest.raises(RequestMismatchError) as failure:
        plan_request(demo(input_products=[{"CADUS": ["S1A_1", "c"]}]), get_tasktable("demo"))
    assert (
        str(failure.value) == "'input_products' names ['CADUS'], which no unit of the request has (it has: \"CADU\")."
    )


def test_a_mandatory_output_without_a_collection_is_refused() -> None:
    table = copy.deepcopy(get_tasktable("demo"))
    table["units"][0]["output_products"].append({"name": "EXTRA", "mandatory": True})
    table["io"].append({"name": "EXTRA", "type": "folder", "store_type": "zarr"})
    table["pipelines"][0]["steps"][0]["output_products"]["EXTRA"] = "pipeline_output"
    with pytest.raises(RequestMismatchError) as failure:
        plan_request(demo(), table)
    assert "'generated_product_to_collection_identifier' has no entry for the mandatory ['EXTRA']." in str(
        failure.value
    )


def test_no_collection_for_an_adf_is_a_clear_error() -> None:
    request = demo(auxiliary_product_to_collection_identifier={"AUX_RESORB": "orbits"}, satellite=None)
    with pytest.raises(AuxCollectionError, match='No ADF collection for product type "AUX_POEORB"'):
        plan_request(request, get_tasktable("demo"))


def test_the_reference_s1_l0_call_plans_on_the_2_0_task_table() -> None:
    """rs-dpr-service's S1 L0 call: optional ADFs, outputs mapped with the `*` product type."""
    plan = plan_request(DprProcessIn.model_validate(load("parameter-call-s1-l0.json")), load("tasktable-s1-l0.json"))
    adfs = {adf.name: adf for unit in plan.unit_plans for adf in unit.adfs}
    assert {name: adf.mandatory for name, adf in adfs.items()} == {"osf": False, "fro": False}
    assert [a.collection for a in adfs["osf"].alternatives] == ["ax___osf_ax"]
    assert set(plan.output_collections) == {"S01SARRAW", "S01GPSRAW", "S01HKMRAW", "S01AISRAW"}
