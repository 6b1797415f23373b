"""A stack of its own: a dead service is restarted alone, `down` stops exactly what it started, and a
second `up` reuses the ports and keeps the Temporal history and the catalog data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rs_ondemand.stack import Stack, StackInfo, procs
from rs_ondemand.stack.envfile import read_env_file
from rs_ondemand.stack.health import wait_until
from rs_ondemand.stack.services import find_tool
from tests.support.stack import stack_cli, stack_of_its_own

SERVICES = {"temporal", "s3", "postgres", "catalog"}


@pytest.fixture
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A second, lean stack (no simulator, no worker), so the session stack is never disturbed."""
    with stack_of_its_own(tmp_path_factory.mktemp("restart"), with_simulator=False) as launcher:
        yield launcher


def temporal(*args: str, address: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_tool("temporal"), *args, "--address", address], capture_output=True, text=True, timeout=30
    )


def test_stack_restarts_dead_services_and_survives_down_up(own_stack: Stack, stack: StackInfo) -> None:
    """Kill S3 → `up` restarts only S3; `down` stops only this stack; `up` brings back the same env + data."""
    first = own_stack.up()
    assert all(service.started for service in first.services.values())
    assert set(first.services) == SERVICES

    # Durable things to find after the restart: a workflow waiting in history (no worker needed) and a
    # catalog collection.
    workflow_id = f"restart-{uuid.uuid4().hex[:8]}"
    started = temporal(
        *("workflow", "start", "--type", "Nothing", "--task-queue", "nobody"),
        *("--workflow-id", workflow_id),
        address=first.temporal_address,
    )
    assert started.returncode == 0, started.stderr
    collection = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": workflow_id,
        "description": "restart test",
        "license": "proprietary",
        "links": [],
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
    }
    with httpx.Client(base_url=first.catalog_url, trust_env=False, timeout=30) as http:
        assert http.post("/collections", json=collection).status_code in (200, 201)

    # A crashed service is started again, alone, and its set-up (the buckets) redone.
    s3_pid = first.services["s3"].pid
    assert s3_pid is not None
    os.killpg(s3_pid, signal.SIGKILL)
    wait_until("s3 death", lambda: not procs.pid_running(s3_pid), timeout=10, log_path=None)
    healed = own_stack.up()
    assert {name for name, service in healed.services.items() if service.started} == {"s3"}
    assert healed.env == first.env

    pids = {name: service.pid for name, service in healed.services.items()}
    assert set(own_stack.down()) == SERVICES
    for name, pid in pids.items():
        assert pid is not None
        assert not procs.pid_running(pid), name
    # The session stack (other processes, same machine) is untouched.
    assert all(service["healthy"] for service in Stack(stack.state_dir).status()["services"].values())
    down_status = stack_cli("status", "--dir", str(own_stack.state_dir), "--json")
    assert down_status.returncode == 1
    assert not any(service["healthy"] for service in json.loads(down_status.stdout)["services"].values())

    second = own_stack.up()
    assert all(service.started for service in second.services.values())
    assert second.env == first.env == read_env_file(own_stack.env_file)
    described = temporal(
        "workflow", "describe", "--workflow-id", workflow_id, "-o", "json", address=second.temporal_address
    )
    assert described.returncode == 0, described.stderr
    status = json.loads(described.stdout)["workflowExecutionInfo"]["status"]
    assert status == "WORKFLOW_EXECUTION_STATUS_RUNNING"
    with httpx.Client(base_url=second.catalog_url, trust_env=False, timeout=30) as http:
        assert http.get(f"/collections/{workflow_id}").status_code == 200


def test_purge_deletes_data_but_keeps_logs(tmp_path: Path) -> None:
    """`down(purge=True)` on a never-started dir leaves only what it must (nothing but logs)."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "temporal.log").write_text("kept\n")
    (tmp_path / "temporal.db").write_text("gone")
    assert Stack(tmp_path, notify=lambda message: None).down(purge=True) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"]
