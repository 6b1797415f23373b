"""Request-derived workflow ids: every input that changes what a request does is part of the id; the same
request written differently has the same id; ids stay short enough for Temporal and for what derives from them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from rs_ondemand.models.common import FlowEnv
from rs_ondemand.models.dpr import DprProcessIn
from rs_ondemand.models.staging import AuxipStagingInput, CadipStagingInput, PripStagingInput
from rs_ondemand.starter.request_ids import (
    MAX_ID_LENGTH,
    auxip_workflow_id,
    cadip_workflow_id,
    dpr_workflow_id,
    prip_workflow_id,
)

HOW_NOT_WHAT = {"options", "env.calling_span"}
"""Fields that say how to run a request, not what it does: left out of ids on purpose."""

WINDOW = {"start_datetime": "2025-08-07T11:51:12.509Z", "end_datetime": "2025-08-08"}
DEMO = json.loads((Path(__file__).resolve().parents[2] / "samples" / "dpr-demo.json").read_text())

# Per request kind: the id function, a valid request, and for every field a change of it.
KINDS: dict[str, tuple[type[BaseModel], Callable[[Any], str], dict[str, Any], dict[str, Any]]] = {
    "cadip": (
        CadipStagingInput,
        cadip_workflow_id,
        {
            "env": {"owner_id": "alice"},
            "cadip_collection_identifier": "cadip",
            "session_identifier": "S1A_20241114143038056552",
            "catalog_collection_identifier": "s1-cadip-session",
        },
        {
            "env.owner_id": "bob",
            "cadip_collection_identifier": "cadip_sentinel2",
            "session_identifier": "S1A_20241114143038056553",
            "catalog_collection_identifier": "other",
            "require_complete": True,
        },
    ),
    "prip": (
        PripStagingInput,
        prip_workflow_id,
        {
            "env": {"owner_id": "alice"},
            **WINDOW,
            "product_type": "S01SIWSLC",
            "prip_collection": "prip",
            "catalog_collection_identifier": "s1-l1",
        },
        {
            "env.owner_id": "bob",
            "start_datetime": "2025-08-07T11:51:12.510Z",
            "end_datetime": "2025-08-09",
            "product_type": "S01SIWGRH",
            "prip_collection": "prip_sentinel1",
            "catalog_collection_identifier": "other",
        },
    ),
    "auxip": (
        AuxipStagingInput,
        auxip_workflow_id,
        {
            "env": {"owner_id": "alice"},
            **WINDOW,
            "product_type": "AUX_RESORB",
            "catalog_collection_identifier": "s1-aux",
        },
        {
            "env.owner_id": "bob",
            "start_datetime": "2025-08-07T11:51:12.510Z",
            "end_datetime": "2025-08-09",
            "product_type": "AUX_POEORB",
            "auxip_collection": "auxip",
            "catalog_collection_identifier": "other",
        },
    ),
    "dpr": (
        DprProcessIn,
        dpr_workflow_id,
        DEMO,
        {
            "env.owner_id": "bob",
            "processor_name": "mockup",
            "processor_version": "0.2.0",
            "dask_cluster_label": "dask-l0",
            "s3_payload_file": "s3://bucket/payload.yaml",
            "pipeline": "other_pipeline",
            "unit": ("unit", {"pipeline": None, "unit": "demo_unit"}),
            "priority": "high",
            "workflow_type": "systematic",
            "input_products": [{"CADU": ["S1A_20241114143038056552", "other"]}],
            "generated_product_to_collection_identifier": [{"DEMOL0": ["S01DEMOL0", "other"]}],
            "auxiliary_product_to_collection_identifier": {"*": "other"},
            "processing_mode": ["nrt"],
            "start_datetime": "2024-11-14T14:30:38.478Z",
            "end_datetime": "2024-11-14T14:33:22.663Z",
            "satellite": "sentinel-1b",
            "external_variables": {"instrument_mode": "IW"},
            "adfs": {"ORBIT": "s3://bucket/orbit.EOF"},
            "dask_config": {"distributed.worker.local_directory": "/scratch"},
            "tasktable": {"units": []},
            "dry_run": True,
        },
    ),
}


def changed(base: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    if isinstance(value, tuple):  # (label, several fields at once)
        return base | value[1]
    if field.startswith("env."):
        return base | {"env": base["env"] | {field.removeprefix("env."): value}}
    return base | {field: value}


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_is_covered_by_the_checks(kind: str) -> None:
    """A new input field must be added here, and so be decided on: part of the id, or how-not-what."""
    model, _, _, changes = KINDS[kind]
    fields = {name for name in model.model_fields if name != "env"}
    fields |= {f"env.{name}" for name in FlowEnv.model_fields}
    assert fields - HOW_NOT_WHAT == set(changes)


@pytest.mark.parametrize(
    ("kind", "field"), [(kind, field) for kind, (_, _, _, changes) in KINDS.items() for field in changes]
)
def test_each_input_that_changes_the_request_changes_its_id(kind: str, field: str) -> None:
    model, workflow_id, base, changes = KINDS[kind]
    original = workflow_id(model.model_validate(base))
    other = workflow_id(model.model_validate(changed(base, field, changes[field])))
    assert other != original


@pytest.mark.parametrize("kind", KINDS)
def test_how_to_run_it_does_not_change_the_id(kind: str) -> None:
    model, workflow_id, base, _ = KINDS[kind]
    again = base | {"options": {"step_attempts": 3}, "env": base["env"] | {"calling_span": [1, 2, True]}}
    assert workflow_id(model.model_validate(again)) == workflow_id(model.model_validate(base))


def test_the_same_session_from_two_station_collections_is_two_requests() -> None:
    """Issue 14, defect 3: the second request was attached to the first and reported its result."""
    model, workflow_id, base, _ = KINDS["cadip"]
    ids = {
        workflow_id(model.model_validate(base | {"cadip_collection_identifier": station}))
        for station in ("cadip", "cadip_sentinel2")
    }
    assert len(ids) == 2


def test_the_same_window_written_differently_has_the_same_id() -> None:
    model, workflow_id, base, _ = KINDS["prip"]
    a = base | {"start_datetime": "2025-08-07T11:51:12.509Z", "end_datetime": "2025-08-08"}
    b = base | {"start_datetime": "2025-08-07T13:51:12.509+02:00", "end_datetime": "2025-08-08T00:00:00Z"}
    assert workflow_id(model.model_validate(a)) == workflow_id(model.model_validate(b))


def test_ids_are_readable_and_deterministic() -> None:
    model, workflow_id, base, _ = KINDS["cadip"]
    assert (
        workflow_id(model.model_validate(base)) == "cadip-staging/alice/s1-cadip-session/cadip/S1A_20241114143038056552"
    )
    model, workflow_id, base, _ = KINDS["auxip"]
    assert workflow_id(model.model_validate(base)) == (
        "auxip-staging/alice/s1-aux/*/AUX_RESORB/2025-08-07T11:51:12.509Z/2025-08-08T00:00:00.000Z"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_the_longest_requests_have_bounded_distinct_ids(kind: str) -> None:
    """Every name at its longest: the id stays within MAX_ID_LENGTH and still tells two such requests apart."""
    model, workflow_id, base, _ = KINDS[kind]

    def longest(last: str) -> Any:
        fields = json.loads(json.dumps(base).replace("alice", "o" * 64).replace('"operator"', '"' + "o" * 64 + '"'))
        for name in model.model_fields:
            names = ("_collection_identifier", "_collection", "session_identifier", "processor_name")
            if name.endswith(names) and not isinstance(fields.get(name), list | dict):
                fields[name] = "n" * 254 + last
        if kind == "dpr":
            fields |= {"pipeline": "p" * 128, "input_products": [{"CADU": ["i" * 254 + last, "c" * 255]}]}
        return model.model_validate(fields)

    a, b = workflow_id(longest("a")), workflow_id(longest("b"))
    assert len(a) <= MAX_ID_LENGTH and len(b) <= MAX_ID_LENGTH and a != b
