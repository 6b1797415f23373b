"""The session stack: every service healthy and usable, and the env file complete."""

from __future__ import annotations

import re
import stat
import subprocess
import uuid
from typing import Any

import boto3
import httpx
from botocore.config import Config
from pystac_client import Client

from rs_ondemand.stack import SEARCH_ATTRIBUTES, Stack, StackInfo
from rs_ondemand.stack.envfile import read_env_file
from rs_ondemand.stack.services import find_tool

BASE_KEYS = {
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_UI_URL",
    "RS_TASK_QUEUE",
    "S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "RS_BUCKET",
    "RS_WORK_BUCKET",
    "CATALOG_URL",
}
STATION_KEYS = {"SIMULATOR_URL", "CADIP_URL", "AUXIP_URL", "PRIP_URL"} | {
    f"{station}_{suffix}"
    for station in ("CADIP", "AUXIP", "PRIP")
    for suffix in ("ODATA_URL", "TOKEN_URL", "CLIENT_ID", "CLIENT_SECRET", "USERNAME", "PASSWORD")
}


def _temporal(*args: str, address: str) -> str:
    done = subprocess.run(
        [find_tool("temporal"), *args, "--address", address], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_up_starts_every_service_healthy(stack: StackInfo) -> None:
    """After `up`, `status` reports every requested service healthy with a live pid."""
    report = Stack(stack.state_dir).status()
    expected = {"temporal", "s3", "postgres", "catalog", "simulator"}
    assert set(report["services"]) == expected
    for name, service in report["services"].items():
        assert service["healthy"], name
        assert service["pid"] == stack.services[name].pid
        assert service["url"] == stack.services[name].url


def test_env_file_is_complete_and_private(stack: StackInfo) -> None:
    """The env file holds the contract's keys (docs/interface.md#stack-env), loopback URLs only, mode 0600."""
    env = read_env_file(stack.env_file)
    assert env == stack.env
    assert env.keys() >= BASE_KEYS
    assert stat.S_IMODE(stack.env_file.stat().st_mode) == 0o600
    assert env["TEMPORAL_NAMESPACE"] == "default"
    assert env["RS_TASK_QUEUE"] == "rs-ondemand"
    assert (env["RS_BUCKET"], env["RS_WORK_BUCKET"]) == ("rs-cluster-catalog", "rs-ondemand-work")
    for key in ("TEMPORAL_UI_URL", "S3_ENDPOINT_URL", "CATALOG_URL"):
        assert env[key].startswith("http://127.0.0.1:"), key
    assert env["TEMPORAL_ADDRESS"].startswith("127.0.0.1:")


def test_env_file_describes_the_stations(stack: StackInfo) -> None:
    """Station URLs derive from the simulator root; every station gets the simulator's credentials."""
    assert stack.simulator_url, "the test stack runs the simulator"
    env = stack.env
    assert env.keys() >= STATION_KEYS
    root = env["SIMULATOR_URL"]
    for station in ("cadip", "auxip", "prip"):
        prefix = station.upper()
        assert env[f"{prefix}_URL"] == f"{root}/{station}/stac"
        assert env[f"{prefix}_ODATA_URL"] == f"{root}/{station}"
        assert env[f"{prefix}_TOKEN_URL"] == f"{root}/{station}/oauth2/token"
        assert env[f"{prefix}_CLIENT_SECRET"] == env["CADIP_CLIENT_SECRET"]


def test_simulator_answers_health_and_issues_tokens(stack: StackInfo) -> None:
    """The simulator runs with the credentials written to the env file."""
    assert stack.simulator_url, "the test stack runs the simulator"
    env = stack.env
    with httpx.Client(trust_env=False, timeout=10) as http:
        assert http.get(f"{stack.simulator_url}/health").status_code == 200
        token = http.post(
            env["CADIP_TOKEN_URL"],
            data={
                "grant_type": "password",
                "client_id": env["CADIP_CLIENT_ID"],
                "client_secret": env["CADIP_CLIENT_SECRET"],
                "username": env["CADIP_USERNAME"],
                "password": env["CADIP_PASSWORD"],
            },
        )
    assert token.status_code == 200, token.text
    assert token.json()["access_token"]


def test_s3_buckets_exist(stack: StackInfo) -> None:
    """Both buckets exist and accept the stack's credentials (path-style, checksums when required)."""
    env = stack.env
    client: Any = boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required"),
    )
    try:
        for bucket in (env["RS_BUCKET"], env["RS_WORK_BUCKET"]):
            client.head_bucket(Bucket=bucket)
        key = f"test-stack/{uuid.uuid4().hex}"
        client.put_object(Bucket=env["RS_WORK_BUCKET"], Key=key, Body=b"hello")
        assert client.get_object(Bucket=env["RS_WORK_BUCKET"], Key=key)["Body"].read() == b"hello"
    finally:
        client.close()


def _collection(collection_id: str) -> dict[str, Any]:
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": collection_id,
        "description": "stack test",
        "license": "proprietary",
        "links": [],
        "extent": {
            "spatial": {"bbox": [[-180, -90, 180, 90]]},
            "temporal": {"interval": [["2024-01-01T00:00:00Z", None]]},
        },
    }


def _item(collection_id: str, item_id: str) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": collection_id,
        "geometry": {"type": "Point", "coordinates": [10.0, 45.0]},
        "bbox": [10.0, 45.0, 10.0, 45.0],
        "properties": {"datetime": "2024-01-02T03:04:05Z", "owner": "stack-test"},
        "links": [],
        "assets": {},
    }


def test_catalog_accepts_transactions_and_searches(stack: StackInfo) -> None:
    """Transactions are on: a collection and an item POST succeed and pystac-client finds the item."""
    collection_id = f"stack-test-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=stack.catalog_url, trust_env=False, timeout=30) as http:
        assert http.post("/collections", json=_collection(collection_id)).status_code in (200, 201)
        created = http.post(f"/collections/{collection_id}/items", json=_item(collection_id, "item-1"))
        assert created.status_code in (200, 201), created.text
    catalog = Client.open(stack.catalog_url)
    search = catalog.search(
        collections=[collection_id],
        filter={"op": "=", "args": [{"property": "owner"}, "stack-test"]},
        filter_lang="cql2-json",
    )
    assert [item.id for item in search.items()] == ["item-1"]


def test_temporal_is_serving_with_search_attributes(stack: StackInfo) -> None:
    """The dev server answers gRPC health, has our search attributes and serves the UI."""
    assert "SERVING" in _temporal("operator", "cluster", "health", address=stack.temporal_address)
    listed = _temporal("operator", "search-attribute", "list", address=stack.temporal_address)
    for name, kind in SEARCH_ATTRIBUTES.items():
        assert re.search(rf"\b{name}\s+{kind}\b", listed), name
    with httpx.Client(trust_env=False, timeout=10) as http:
        assert http.get(stack.temporal_ui_url).status_code == 200


def test_up_again_reuses_the_running_stack(stack: StackInfo) -> None:
    """A second `up` on a running stack starts nothing and reports the same processes and env."""
    again = Stack(
        stack.state_dir,
        with_worker=False,
        with_simulator=True,
        prefer_default_ports=False,
        notify=lambda message: None,
    ).up()
    assert not any(service.started for service in again.services.values())
    assert {n: s.pid for n, s in again.services.items()} == {n: s.pid for n, s in stack.services.items()}
    assert again.env == stack.env
