"""The EOPF payload generator (pure): shape, secrets by name, run-scoped outputs, ADF rules, Dask contexts."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from rs_ondemand.config import ProcessorSettings
from rs_ondemand.dpr.payload import (
    PayloadError,
    build_payload,
    payload_yaml,
    run_output_prefix,
    with_dask_context,
    with_progress_callback,
)
from rs_ondemand.models.processor_run import (
    AddressDaskCluster,
    GatewayAuth,
    GatewayDaskCluster,
    LocalDaskCluster,
    PayloadSpec,
    S3StorageRef,
    parse_dask_cluster,
)

SESSION = "s3://rs-cluster-catalog/alice/s01-cadip-session/S1A_20241114143038056552/"
ORBIT = "s3://rs-cluster-catalog/alice/s1-aux/S1A_RESORB/S1A_RESORB.EOF"


def spec(units: list[dict[str, Any]], **changes: Any) -> PayloadSpec:
    fields: dict[str, Any] = {
        "run_id": "run-1",
        "units": units,
        "input_paths": {"CADU": SESSION},
        "adf_paths": {"ORBIT": [ORBIT]},
        "output_paths": {"DEMOL0": run_output_prefix("rs-cluster-catalog", "alice", "s01demol0", "run-1")},
        "storage": S3StorageRef(endpoint_url="http://127.0.0.1:9000", region_name="us-east-1"),
    }
    return PayloadSpec(**(fields | changes))


def test_payload_has_the_eopf_3_shape(demo_units: list[dict[str, Any]]) -> None:
    payload = build_payload(spec(demo_units))
    assert list(payload) == [
        "general_configuration",
        "external_modules",
        "workflow",
        "io",
        "context_managers",
        "workflow_callbacks",
    ]
    assert payload["general_configuration"]["triggering__wait_before_exit"] == 0
    assert payload["general_configuration"]["triggering__id"] == "run-1"
    # The task table's reader module first, then the unit module: both imported before EOPF parses `io`.
    assert [m["name"] for m in payload["external_modules"]] == ["rs_demo_processor.units"]
    step = payload["workflow"][0]
    assert step | {"parameters": {}} == {
        "name": "DemoL0Unit.1",
        "module": "rs_demo_processor.units",
        "processing_unit": "DemoL0Unit",
        "active": True,
        "validate": False,
        "inputs": {"CADU": "CADU"},
        "adfs": {"ORBIT": "ORBIT"},
        "outputs": {"DEMOL0": "DEMOL0"},
        "parameters": {},
    }
    assert step["parameters"] == {
        "start_datetime": "2024-11-14T14:30:38.477Z",
        "end_datetime": "2024-11-14T14:33:22.662Z",
    }
    (cadu,) = payload["io"]["input_products"]
    assert {k: cadu[k] for k in ("id", "path", "type", "engine")} == {
        "id": "CADU",
        "path": SESSION,
        "type": "folder",
        "engine": "cadu",
    }
    (orbit,) = payload["io"]["adfs"]
    assert (orbit["id"], orbit["path"]) == ("ORBIT", ORBIT)
    (output,) = payload["io"]["output_products"]
    assert output["engine"] == "cpm_zarr" and output["type"] == "folder"
    assert output["writer_params"]["mode"] == "w"  # CREATE_OVERWRITE in the task table
    assert payload["context_managers"] == []  # the processor activity adds the request's cluster
    assert payload["workflow_callbacks"][0]["module"] == "rs_eopf_hooks.progress"


def test_external_modules_of_the_task_table_come_first(demo_units: list[dict[str, Any]]) -> None:
    modules = [{"name": "rs_demo_processor.cadu_reader"}, {"name": "rs_demo_processor.units"}]
    payload = build_payload(spec(demo_units, external_modules=modules))
    assert [m["name"] for m in payload["external_modules"]] == [
        "rs_demo_processor.cadu_reader",
        "rs_demo_processor.units",
    ]


def test_credentials_are_named_never_written(demo_units: list[dict[str, Any]]) -> None:
    payload = build_payload(spec(demo_units))
    options = payload["io"]["input_products"][0]["reader_params"]["storage_options"]
    assert options == {
        "key": "${AWS_ACCESS_KEY_ID}",
        "secret": "${AWS_SECRET_ACCESS_KEY}",
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000", "region_name": "us-east-1"},
    }
    assert payload["io"]["adfs"][0]["adf_params"]["storage_options"] == options
    assert payload["io"]["output_products"][0]["writer_params"]["storage_options"] == options


def test_endpoint_and_region_default_to_placeholders(demo_units: list[dict[str, Any]]) -> None:
    payload = build_payload(spec(demo_units, storage=S3StorageRef()))
    client = payload["io"]["input_products"][0]["reader_params"]["storage_options"]["client_kwargs"]
    assert client == {"endpoint_url": "${S3_ENDPOINT_URL}", "region_name": "${AWS_DEFAULT_REGION}"}


def test_local_paths_get_no_storage_options(demo_units: list[dict[str, Any]]) -> None:
    payload = build_payload(spec(demo_units, input_paths={"CADU": "/data/session"}))
    assert payload["io"]["input_products"][0]["reader_params"] == {}


def test_outputs_are_unique_per_run() -> None:
    first = run_output_prefix("b", "alice", "s01demol0", "run-1")
    assert first == "s3://b/alice/s01demol0/run-1/"
    assert first != run_output_prefix("b", "alice", "s01demol0", "run-2")


def test_optional_adf_not_found_is_left_out(demo_units: list[dict[str, Any]]) -> None:
    units = [demo_units[0] | {"input_adfs": [demo_units[0]["input_adfs"][0] | {"mandatory": False}]}]
    payload = build_payload(spec(units, adf_paths={}))
    assert payload["io"]["adfs"] == []
    assert payload["workflow"][0]["adfs"] == {}


def test_missing_mandatory_adf_is_refused(demo_units: list[dict[str, Any]]) -> None:
    with pytest.raises(PayloadError, match=r"mandatory ADF 'ORBIT' of unit 'DemoL0Unit\.1' was not resolved"):
        build_payload(spec(demo_units, adf_paths={}))


def test_missing_input_and_output_are_refused(demo_units: list[dict[str, Any]]) -> None:
    with pytest.raises(PayloadError, match=r"input 'CADU' of unit 'DemoL0Unit\.1' has no path in the request"):
        build_payload(spec(demo_units, input_paths={}))
    with pytest.raises(PayloadError, match=r"output 'DEMOL0' of unit 'DemoL0Unit\.1' has no target folder"):
        build_payload(spec(demo_units, output_paths={}))


def test_adf_of_several_files_takes_their_folder(demo_units: list[dict[str, Any]]) -> None:
    item = "s3://b/alice/s1-aux/ITEM"
    payload = build_payload(spec(demo_units, adf_paths={"ORBIT": [f"{item}/a.EOF", f"{item}/b.EOF"]}))
    assert payload["io"]["adfs"][0]["path"] == f"{item}/"
    with pytest.raises(PayloadError, match="2 files in different folders"):
        build_payload(spec(demo_units, adf_paths={"ORBIT": ["s3://b/x/a.EOF", "s3://b/y/b.EOF"]}))


def test_chained_units_and_step_suffixes() -> None:
    """A later-RS pipeline: units named <unit>.<step_id>, the second reading the first's output."""
    first = {
        "name": "Decode.1",
        "module": "pkg.decode",
        "input_products": [{"name": "CADU", "origin": "pipeline_input", "mandatory": True, "type": "folder"}],
        "input_adfs": [],
        "output_products": [{"name": "RAW", "origin": "pipeline_internal", "mandatory": True, "regex": "^raw_.*"}],
    }
    second = {
        "name": "Calibrate.2",
        "module": "pkg.calibrate",
        "input_products": [{"name": "RAW", "origin": "Decode.1.RAW", "mandatory": True}],
        "input_adfs": [],
        "output_products": [{"name": "L1", "origin": "pipeline_output", "mandatory": True, "store_type": "zarr"}],
    }
    payload = build_payload(
        PayloadSpec(run_id="r", units=[first, second], input_paths={"CADU": "/in"}, output_paths={"L1": "/out/"})
    )
    decode, calibrate = payload["workflow"]
    assert (decode["processing_unit"], calibrate["processing_unit"]) == ("Decode", "Calibrate")
    assert decode["outputs"] == {}  # internal: handed over in memory, not written
    assert calibrate["inputs"] == {"RAW": "Decode.1.RAW"}
    assert [p["id"] for p in payload["io"]["input_products"]] == ["CADU"]
    assert [p["id"] for p in payload["io"]["output_products"]] == ["L1"]


def test_dask_contexts_by_cluster_kind(demo_units: list[dict[str, Any]]) -> None:
    local = build_payload(spec(demo_units, dask=LocalDaskCluster()))["context_managers"]
    assert local == [
        {
            "module": "eopf.dask_utils.dask_context_manager",
            "context_manager": "DaskContext",
            "parameters": {
                "cluster_type": "local",
                "cluster_config": {
                    "n_workers": 2,
                    "threads_per_worker": 1,
                    "host": "127.0.0.1",
                    "dashboard_address": None,
                },
            },
        }
    ]
    address = build_payload(spec(demo_units, dask=AddressDaskCluster(address="tcp://127.0.0.1:8786")))
    assert address["context_managers"][0]["parameters"] == {
        "cluster_type": "address",
        "client_config": {"address": "tcp://127.0.0.1:8786"},
        "auto_gc": False,  # a shared cluster: concurrent runs must not remove each other's plugin
    }
    gateway = GatewayDaskCluster(
        address="http://127.0.0.1:8001", cluster_name="dask-l0", auth=GatewayAuth(type="basic", username="rs")
    )
    (context,) = build_payload(spec(demo_units, dask=gateway))["context_managers"]
    assert context == {
        "module": "rs_eopf_hooks.gateway",
        "context_manager": "labelled_gateway_cluster",
        "parameters": {
            "address": "http://127.0.0.1:8001",
            "cluster_label": "dask-l0",
            "auto_gc": False,
            "auth": {"type": "basic", "username": "rs", "password": "${DASK_GATEWAY_PASSWORD}"},
        },
    }
    hub = gateway.model_copy(update={"auth": GatewayAuth(type="jupyterhub")})
    (context,) = build_payload(spec(demo_units, dask=hub))["context_managers"]
    assert context["parameters"]["auth"] == {"type": "jupyterhub", "api_token": "${JUPYTERHUB_API_TOKEN}"}


def test_the_run_replaces_the_dask_context_and_progress_file() -> None:
    payload = {
        "dask_context": {"cluster_type": "local"},  # the deprecated top-level form
        "context_managers": [
            {"module": "eopf.dask_utils.dask_context_manager", "context_manager": "DaskContext", "parameters": {}},
            {"module": "other.module", "context_manager": "Other"},
        ],
        "workflow_callbacks": [
            {"module": "rs_eopf_hooks.progress", "function": "record_progress", "parameters": {"path": "/x"}},
            {"module": "other.module", "function": "f"},
        ],
    }
    out = with_progress_callback(with_dask_context(payload, AddressDaskCluster(address="tcp://h:1")), "p.jsonl")
    assert "dask_context" not in out
    assert [cm["module"] for cm in out["context_managers"]] == ["eopf.dask_utils.dask_context_manager", "other.module"]
    assert out["context_managers"][0]["parameters"]["client_config"] == {"address": "tcp://h:1"}
    assert out["workflow_callbacks"][-1]["parameters"] == {"path": "p.jsonl"}
    assert len(out["workflow_callbacks"]) == 2


def test_yaml_keeps_the_builder_order(demo_units: list[dict[str, Any]]) -> None:
    payload = build_payload(spec(demo_units))
    text = payload_yaml(payload)
    assert text.startswith("general_configuration:\n")
    assert yaml.safe_load(text) == payload


def test_cluster_labels_are_read_leniently(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_dask_cluster("local") == LocalDaskCluster()
    assert parse_dask_cluster("tcp://10.0.0.1:8786") == AddressDaskCluster(address="tcp://10.0.0.1:8786")
    monkeypatch.setenv(
        "RS_EOPF_DASK_CLUSTERS",
        '{"local": "local", "dask-l0": "tcp://127.0.0.1:8786", '
        '"gw": {"cluster_type": "gateway", "address": "http://g:8001", "cluster_name": "dask-l0"}}',
    )
    clusters = ProcessorSettings().dask_clusters
    assert clusters["local"] == LocalDaskCluster()
    assert clusters["dask-l0"] == AddressDaskCluster(address="tcp://127.0.0.1:8786")
    assert clusters["gw"] == GatewayDaskCluster(address="http://g:8001", cluster_name="dask-l0")
    with pytest.raises(ValueError, match="unknown cluster_type 'kubernetes'"):
        parse_dask_cluster({"cluster_type": "kubernetes"})
