"""`DprProcessIn`: the original's fields and messages, and the newer RS request shape."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from rs_ondemand.models.dpr import DprProcessIn, ProcessingMode
from rs_ondemand.starter.samples import SAMPLE_SESSION, demo_dpr_request
from tests.support.tasktables import load


def request(**changes: Any) -> dict[str, Any]:
    fields = demo_dpr_request("ops", SAMPLE_SESSION, "s1-cadip")
    return {key: value for key, value in (fields | changes).items() if value is not None}


def error_of(**changes: Any) -> str:
    with pytest.raises(ValidationError) as failure:
        DprProcessIn.model_validate(request(**changes))
    return str(failure.value)


@pytest.mark.parametrize(("pipeline", "unit"), [(None, None), ("demo_full", "DemoL0Unit")])
def test_exactly_one_of_pipeline_and_unit(pipeline: str | None, unit: str | None) -> None:
    message = error_of(pipeline=pipeline, unit=unit)
    assert "Exactly one of 'pipeline' or 'unit' must be provided." in message


@pytest.mark.parametrize(
    "field", ["generated_product_to_collection_identifier", "auxiliary_product_to_collection_identifier"]
)
def test_maps_must_not_be_empty(field: str) -> None:
    empty: Any = [] if field.startswith("generated") else {}
    assert f"'{field}' must not be empty." in error_of(**{field: empty})


def test_inputs_must_not_be_empty_nor_repeated() -> None:
    assert "'input_products' must not be empty." in error_of(input_products=[])
    twice = [{"CADU": ["a", "c"]}, {"CADU": ["b", "c"]}]
    assert "'input_products' names ['CADU'] more than once." in error_of(input_products=twice)


def test_unsafe_names_and_unknown_keys_are_refused() -> None:
    assert "is not a safe identifier" in error_of(input_products=[{"CADU": ["../etc", "c"]}])
    assert "Extra inputs are not permitted" in error_of(proccessor_name="x")


def test_window_must_be_ordered() -> None:
    message = error_of(start_datetime="2024-11-14T15:00:00Z", end_datetime="2024-11-14T14:00:00Z")
    assert "end_datetime 2024-11-14T14:00:00+00:00 is before start_datetime" in message


def test_maps_in_both_shapes_give_the_same_targets() -> None:
    parsed = DprProcessIn.model_validate(
        request(
            generated_product_to_collection_identifier=[{"GRD": ["S1_GRD", "grd"]}, {"SLC": "S1_SLC"}],
            auxiliary_product_to_collection_identifier=[{"AUX_RESORB": "orbits"}, {"*": "aux"}],
        )
    )
    assert parsed.output_targets() == {"GRD": [("S1_GRD", "grd")], "SLC": [("S1_SLC", "S1_SLC")]}
    assert parsed.auxiliary_product_to_collection_identifier == {"AUX_RESORB": "orbits", "*": "aux"}


def test_the_newer_rs_request_shape_is_read_as_is() -> None:
    """rs-dpr-service's parameter call of the S1 L0 processor (reference data)."""
    parsed = DprProcessIn.model_validate(load("parameter-call-s1-l0.json"))
    assert (parsed.processor_name, parsed.processor_version, parsed.env.owner_id) == ("s1_l0", "XXXX", "copernicus")
    assert parsed.dask_cluster_label == "whatever-no-impact-on-payload"
    assert parsed.processing_mode == [ProcessingMode.ALWAYS]
    assert parsed.input_items() == {"S1CADUS": ("S1A_20260911093058043642", "s01-cadip-session")}
    assert parsed.output_targets()["S01GPSRAW"] == [("*", "s01gpsraw")]
    assert parsed.auxiliary_product_to_collection_identifier == {
        "AX___OSF_AX": "ax___osf_ax",
        "AX___FRO_AX": "ax___fro_ax",
    }


def test_the_newer_rs_shape_takes_its_top_level_variables() -> None:
    call = load("parameter-call-s1-l0.json") | {"instrument_mode": "IW", "reference_date": "2024-11-14"}
    parsed = DprProcessIn.model_validate(call)
    assert parsed.external_variables == {"instrument_mode": "IW", "reference_date": "2024-11-14"}
    assert parsed.variables()["satellite"] == "S1A"


def test_variables_are_scalars_and_not_the_standard_fields() -> None:
    assert "external_variables.mode" in error_of(external_variables={"mode": {"nested": 1}})
    message = error_of(external_variables={"satellite": "S1B"})
    assert "'external_variables' repeats ['satellite']: give them as the request's own fields." in message
    # The original request shape has no loose variables: an unknown top-level key is still a mistake.
    assert "Extra inputs are not permitted" in error_of(instrument_mode="IW")


def test_supplied_adfs_are_s3_urls_or_catalog_items() -> None:
    parsed = DprProcessIn.model_validate(request(adfs={"ORBIT": "s3://b/orbit.EOF", "DEM": ["GLO-30", "dem"]}))
    assert parsed.adfs == {"ORBIT": "s3://b/orbit.EOF", "DEM": ("GLO-30", "dem")}
    assert "adfs.ORBIT" in error_of(adfs={"ORBIT": "/local/orbit.EOF"})
