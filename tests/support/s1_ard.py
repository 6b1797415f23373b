"""The RS Sentinel-1 ARD test table (tests/dpr/data/tasktable-s1-ard-test.json) and an RS-shaped request for it."""

from __future__ import annotations

from typing import Any

from rs_ondemand.dpr.payload import build_payload, payload_spec
from rs_ondemand.models.dpr import AdfItem, DprProcessIn, ProcessingPlan, UnitResolution
from rs_ondemand.models.processor_run import S3StorageRef
from tests.support.tasktables import load

TABLE = "tasktable-s1-ard-test.json"
PIPELINES = ("ARD_DEM_ONLY_PIPELINE", "ARD_REFERENCE_PIPELINE", "SLC__1_CSL__1", "SLC__1_GSL__1", "SLC__1_NRB__1")
SLC_ITEM = ("S1A_IW_SLC__1SDV_20241114T143038_20241114T143105_056552", "s1-slc")
SLC_PROPERTIES = {
    "start_datetime": "2024-11-14T14:30:38.477Z",
    "end_datetime": "2024-11-14T14:31:05.662Z",
    "datetime": "2024-11-14T14:30:38.477Z",
    "platform": "sentinel-1a",
}
OUTPUTS = ("simulation_ref", "cslcs", "slcs", "gslcs", "nrb")


def tasktable() -> dict[str, Any]:
    return dict(load(TABLE))


def rs_request(pipeline: str, **changes: Any) -> dict[str, Any]:
    """A request in the newer RS shape: its variables are top-level keys; one output map for every pipeline."""
    request: dict[str, Any] = {
        "pipeline": pipeline,
        "priority": "low",
        "workflow": "on-demand",
        "processor": {"name": "s1_ard", "version": "1.2.0rc1"},
        "processing_mode": ["always"],
        "owner_identifier": "copernicus",
        "dask_cluster_name": "whatever-no-impact-on-payload",
        "satellite": "sentinel-1a",
        "instrument_mode": "IW",
        "reference_date": "2024-11-14",
        "input_products": [{"name": "slcs", "item_id": SLC_ITEM[0], "collection_name": SLC_ITEM[1]}],
        "auxiliary_product_to_collection_identifier": [{"product_type": "*", "collection_name": "s1-aux"}],
        "generated_product_to_collection_identifier": [
            {"name": name, "product_type": "*", "collection_name": f"s1-ard-{name.lower()}"} for name in OUTPUTS
        ],
        "adfs": {"REFERENCE_DB": "s3://rs-cluster-catalog/copernicus/s1-aux/REFERENCE_DB/"},
    }
    return request | changes


def parsed(pipeline: str, **changes: Any) -> DprProcessIn:
    return DprProcessIn.model_validate(rs_request(pipeline, **changes))


def resolved_payload(plan: ProcessingPlan, input_path: str, adf_root: str, output_root: str) -> dict[str, Any]:
    """The payload of `plan` with every input, ADF and output at a path under the given roots, as if every
    unit's inputs and ADFs had been found."""
    resolutions = [
        UnitResolution(
            name=unit.name,
            input_paths={spec.name: input_path for spec in unit.inputs},
            adfs={adf.name: [adf.supplied or AdfItem(hrefs=[f"{adf_root}/{adf.name}"])] for adf in unit.adfs},
        )
        for unit in plan.unit_plans
    ]
    spec = payload_spec(
        plan,
        resolutions,
        run_id="run-1",
        output_folder=lambda collection: f"{output_root}/{collection}/run-1/",
        adf_folder=lambda item: f"{adf_root}/{item.id}/",
        storage=S3StorageRef(endpoint_url="http://127.0.0.1:9000", region_name="us-east-1"),
    )
    return build_payload(spec)
