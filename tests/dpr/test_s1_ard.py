"""The RS Sentinel-1 ARD test table: every pipeline plans from an RS-shaped request, and its payload follows the
rules EOPF 3.0 runs a chain by (docs/dpr-payload.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from rs_ondemand.dpr.plan import plan_request
from rs_ondemand.models.dpr import DprProcessIn
from tests.support.s1_ard import PIPELINES, SLC_PROPERTIES, parsed, resolved_payload, tasktable
from tests.support.tasktables import DATA_DIR, load


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_pipeline_plans_with_the_input_products_properties(pipeline: str) -> None:
    plan = plan_request(parsed(pipeline), tasktable(), {"slcs": SLC_PROPERTIES})
    assert plan.unresolved == []
    assert plan.variables == {"satellite": "sentinel-1a", "instrument_mode": "IW", "reference_date": "2024-11-14"}
    assert plan.unit_plans[0].name == "Calibration.1"
    for unit in plan.unit_plans:
        for adf in unit.adfs:
            for alternative in adf.alternatives:
                text = json.dumps(alternative.query.model_dump())
                assert "{slcs." not in text and "{external_variable." not in text, (unit.name, adf.name)
    # RS sends one output map for every pipeline: what this one does not produce is a warning.
    assert plan.warnings and all("which no unit of this request produces: ignored" in w for w in plan.warnings)


def test_adf_queries_read_the_input_product_and_the_request_variables() -> None:
    plan = plan_request(parsed("SLC__1_NRB__1"), tasktable(), {"slcs": SLC_PROPERTIES})
    assert plan.input_properties == {
        "slcs": {"start_datetime": SLC_PROPERTIES["start_datetime"], "end_datetime": SLC_PROPERTIES["end_datetime"]}
        | {"platform": "sentinel-1a"}
    }
    adfs = {adf.name: adf for unit in plan.unit_plans for adf in unit.adfs}
    (etad,) = adfs["ETAD"].alternatives
    assert etad.product_type == "IW_ETA__AX"  # {external_variable.instrument_mode}_ETA__AX
    _, equal_platform, contains = etad.query.filter["args"]  # type: ignore[index]
    assert equal_platform["args"][1] == "sentinel-1a"  # {slcs.platform}
    assert contains["args"][1]["interval"] == [SLC_PROPERTIES["start_datetime"], SLC_PROPERTIES["end_datetime"]]
    (tiles,) = adfs["S2_TILES"].alternatives
    tiles_window = tiles.query.filter["args"][2]["args"][1]["interval"]  # type: ignore[index]
    assert tiles_window == ["2024-11-14T00:00:00.000Z", "2024-11-14T23:59:59.000Z"]  # {reference_date}T00:00:00Z
    assert [a.product_type for a in adfs["ORBIT"].alternatives] == [
        "MPL_ORBSCT",
        "AUX_POEORB",
        "AUX_MOEORB",
        "MPL_ORBRES",
        "MPL_ORBPRE",
    ]
    # The reference database has no alternative: the request supplies it, and nothing is searched for it.
    assert adfs["REFERENCE_DB"].supplied is not None
    assert adfs["REFERENCE_DB"].supplied.hrefs == ["s3://rs-cluster-catalog/copernicus/s1-aux/REFERENCE_DB/"]


def test_without_the_catalog_the_input_placeholders_are_listed_unresolved() -> None:
    plan = plan_request(parsed("SLC__1_NRB__1"), tasktable())
    assert plan.unresolved == ["slcs.start_datetime", "slcs.end_datetime", "slcs.platform"]
    etad = next(adf for unit in plan.unit_plans for adf in unit.adfs if adf.name == "ETAD")
    assert etad.alternatives[0].unresolved == ["slcs.start_datetime", "slcs.end_datetime", "slcs.platform"]


def test_the_chain_payload_follows_eopf_rules() -> None:
    """CSL: five units chained through memory; `slcs` is both the pipeline's input and one of its outputs."""
    plan = plan_request(parsed("SLC__1_CSL__1"), tasktable(), {"slcs": SLC_PROPERTIES})
    payload = resolved_payload(plan, "s3://b/in/slc.zarr", "s3://b/aux", "s3://b/out")
    steps = {step["name"]: step for step in payload["workflow"]}
    assert list(steps) == ["Calibration.1", "ReferenceDEM.2", "ReferenceGeometry.3", "coregistration.4"]
    assert {step["processing_unit"] for step in steps.values()} == {
        "Calibration",
        "ReferenceDEM",
        "ReferenceGeometry",
        "coregistration",
    }
    # The input keeps its name unless an output has it: EOPF would read the output and see a cycle.
    (slcs_input,) = payload["io"]["input_products"]
    assert slcs_input["id"] == "slcs.input" and slcs_input["type"] == "file"
    assert steps["Calibration.1"]["inputs"] == {"slcs": "slcs.input"}
    # Internal products are handed over in memory, by `<unit id>.<product>`: never written as an output, even
    # where a pipeline output has the same name (Calibration's `slcs`).
    assert steps["Calibration.1"]["outputs"] == {}
    assert steps["ReferenceDEM.2"]["outputs"] == {}
    assert steps["ReferenceGeometry.3"]["inputs"] == {"slcs": "Calibration.1.slcs", "dem": "ReferenceDEM.2.DEM"}
    assert steps["coregistration.4"]["inputs"] == {
        "slcs": "Calibration.1.slcs",
        "dem": "ReferenceDEM.2.DEM",
        "simulation_ref": "ReferenceGeometry.3.simulation_ref",
    }
    assert steps["coregistration.4"]["outputs"] == {"cslcs": "cslcs", "slcs": "slcs"}
    # `file` outputs are the product's own path, with its writer's extension; ADF ids keep their spelling.
    outputs = {entry["id"]: entry for entry in payload["io"]["output_products"]}
    assert outputs["cslcs"]["path"] == "s3://b/out/s1-ard-cslcs/run-1/cslcs.zarr"
    assert outputs["slcs"]["path"] == "s3://b/out/s1-ard-slcs/run-1/slcs.zarr"
    assert steps["Calibration.1"]["adfs"] == {"ETAD": "ETAD", "ORBIT": "ORBIT", "REFERENCE_DB": "REFERENCE_DB"}
    assert payload["io"]["adfs"][0]["id"] == "ETAD"


def test_step_parameters_take_the_request_variables() -> None:
    plan = plan_request(parsed("SLC__1_CSL__1"), tasktable(), {"slcs": SLC_PROPERTIES})
    assert plan.units[0]["parameters"] == {"reference_date": "2024-11-14"}


def test_the_s1_l0_payload_agrees_with_rs_reference_payload() -> None:
    """RS's own payload for its S1 L0 request (an older EOPF dialect: compared on what EOPF 3.0 reads the same)."""
    reference = yaml.safe_load((DATA_DIR / "reference-payload-s1-l0.yml").read_text())
    request = DprProcessIn.model_validate(load("parameter-call-s1-l0.json"))
    plan = plan_request(request, load("tasktable-s1-l0.json"))
    payload = resolved_payload(plan, "s3://test-bucket/S1CADUS", "s3://b/aux", "s3://b/out")
    (ours,), (theirs,) = payload["workflow"], reference["workflow"]
    keys = ("name", "module", "processing_unit", "inputs", "outputs", "adfs")
    assert {key: ours[key] for key in keys} == {key: theirs[key] for key in keys}
    assert payload["external_modules"][0] == reference["external_modules"][0]  # its reader engine, star_import

    def shape(entries: list[dict[str, Any]], *fields: str) -> dict[str, tuple[Any, ...]]:
        return {entry["id"]: tuple(entry.get(field) for field in fields) for entry in entries}

    ours_io, theirs_io = payload["io"], reference["io"]
    assert shape(ours_io["input_products"], "type", "engine") == shape(theirs_io["input_products"], "type", "engine")
    assert shape(ours_io["output_products"], "type", "engine", "apply_eoqc") == shape(
        theirs_io["output_products"], "type", "engine", "apply_eoqc"
    )
    assert sorted(adf["id"] for adf in ours_io["adfs"]) == sorted(adf["id"] for adf in theirs_io["adfs"])
