"""`plan_request`: a request applied to a task table, checked before anything is staged or run."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rs_ondemand.dpr.payload import build_payload, payload_spec
from rs_ondemand.dpr.plan import InputPropertyError, RequestMismatchError, plan_request
from rs_ondemand.dpr.queries import AuxCollectionError
from rs_ondemand.dpr.registry import get_tasktable
from rs_ondemand.models.dpr import DprProcessIn
from rs_ondemand.models.processor_run import S3StorageRef
from rs_ondemand.starter.samples import SAMPLE_SESSION, demo_dpr_request
from tests.support import s1_ard
from tests.support.tasktables import load

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


# --- Request variables, input-product properties, supplied ADFs: each bad input has its one-line error -----------


def test_an_unknown_variable_is_refused() -> None:
    request = s1_ard.parsed("SLC__1_NRB__1", instrument_mod="IW")  # a typo: a top-level key of the RS shape
    with pytest.raises(RequestMismatchError) as failure:
        plan_request(request, s1_ard.tasktable())
    assert str(failure.value) == (
        "'external_variables' names ['instrument_mod'], which the task table neither declares nor uses "
        '(its other variables: "instrument_mode", "reference_date").'
    )


def test_a_missing_property_of_an_input_product_is_refused() -> None:
    with pytest.raises(InputPropertyError) as failure:
        plan_request(s1_ard.parsed("SLC__1_NRB__1"), s1_ard.tasktable(), {"slcs": {"start_datetime": "x"}})
    assert str(failure.value) == (
        'The task table uses "{slcs.end_datetime}", but input product "slcs" (item '
        f"'{s1_ard.SLC_ITEM[0]}' in collection 's1-slc') has no property 'end_datetime'."
    )


def test_a_placeholder_naming_an_input_the_request_does_not_give_is_refused() -> None:
    table = s1_ard.tasktable()
    table["io"]["adfs"][1]["alternatives"][0]["query"]["parameters"]["satellite"] = "{slc.platform}"
    with pytest.raises(InputPropertyError) as failure:
        plan_request(s1_ard.parsed("SLC__1_NRB__1"), table)
    assert str(failure.value) == (
        'The task table uses "{slc.platform}", but the request has no input product "slc" (it gives: "slcs") '
        "to read the property 'platform' from."
    )


def test_an_adf_supplied_for_nothing_is_refused() -> None:
    adfs = {"REFERENCE_DB": "s3://b/db/", "DEM_TILES": ["GLO-30", "dem"]}
    with pytest.raises(RequestMismatchError) as failure:
        plan_request(s1_ard.parsed("ARD_DEM_ONLY_PIPELINE", adfs=adfs), s1_ard.tasktable())
    assert str(failure.value) == (
        "'adfs' supplies ['DEM_TILES'], which no unit of the request uses "
        '(its ADFs: "ETAD", "ORBIT", "REFERENCE_DB", "DEM").'
    )


def test_a_mandatory_adf_without_alternatives_must_be_supplied() -> None:
    with pytest.raises(RequestMismatchError) as failure:
        plan_request(s1_ard.parsed("ARD_REFERENCE_PIPELINE", adfs={}), s1_ard.tasktable())
    assert str(failure.value) == (
        'ADF "REFERENCE_DB" of unit "ReferenceGeometry.3" is mandatory and the task table gives no way to search '
        "for it: supply it in the request's 'adfs' (an s3:// URL or [item id, collection])."
    )


def test_a_supplied_adf_replaces_the_search() -> None:
    plan = plan_request(demo(adfs={"ORBIT": ["S1A_OPER_AUX_RESORB", "s1-aux"]}), get_tasktable("demo"))
    (orbit,) = plan.unit_plans[0].adfs
    assert orbit.alternatives == []
    assert orbit.supplied is not None and (orbit.supplied.collection, orbit.supplied.id) == (
        "s1-aux",
        "S1A_OPER_AUX_RESORB",
    )


def test_a_shared_output_map_warns_about_what_the_pipeline_does_not_produce() -> None:
    outputs = [{"DEMOL0": ["S01DEMOL0", "s1-demo-l0"]}, {"DEMOL1": ["S01DEMOL1", "s1-demo-l1"]}]
    plan = plan_request(demo(generated_product_to_collection_identifier=outputs), get_tasktable("demo"))
    assert plan.warnings == [
        "generated_product_to_collection_identifier maps 'DEMOL1', which no unit of this request produces: ignored"
    ]
    assert plan.output_collections == {"DEMOL0": "s1-demo-l0"}


def test_plan_shows_the_variables_as_the_units_get_them() -> None:
    plan = plan_request(demo(), get_tasktable("demo"))
    assert plan.variables == {
        "start_datetime": "2024-11-14T14:30:38.477Z",
        "end_datetime": "2024-11-14T14:33:22.662Z",
        "satellite": "sentinel-1a",
    }
    assert plan.unresolved == [] and plan.input_properties == {}


def test_dask_config_and_the_processor_configuration_files_reach_the_payload() -> None:
    table = copy.deepcopy(get_tasktable("demo"))
    table["tasktable"]["configuration_path"] = {"processor": ["/opt/demo/demo.toml"], "logging": ["/opt/demo/log.yaml"]}
    plan = plan_request(demo(dask_config={"distributed.worker.local_directory": "/scratch"}), table)
    assert (plan.config_files, plan.logging_files) == (["/opt/demo/demo.toml"], ["/opt/demo/log.yaml"])
    payload = build_payload(
        payload_spec(
            plan,
            [],
            run_id="r",
            output_folder=lambda collection: f"/out/{collection}/",
            adf_folder=lambda item: f"/aux/{item.id}/",
            storage=S3StorageRef(),
        ).model_copy(update={"input_paths": {"CADU": "/in/"}, "adf_paths": {"ORBIT": ["/aux/orbit.EOF"]}})
    )
    assert payload["dask_config"] == {"distributed.worker.local_directory": "/scratch"}
    assert (payload["config"], payload["logging"]) == (["/opt/demo/demo.toml"], ["/opt/demo/log.yaml"])
    # EOPF refuses logging files together with its basic logging: the payload asks for it only without them.
    assert "triggering__use_basic_logging" not in payload["general_configuration"]
