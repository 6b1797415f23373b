"""The processors' Dask cluster in docker-compose.yml: the worker's cluster labels point at the compose scheduler,
its workers join it, and driver and cluster run one image (static checks: no engine, no stack)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rs_ondemand.config import ProcessorSettings, Settings
from rs_ondemand.models.processor_run import AddressDaskCluster, GatewayDaskCluster
from tests.support.compose import (
    DASK,
    DASK_WORKER,
    SCHEDULER,
    WORKER,
    command_of,
    dockerfile_env,
    endpoint,
    environment,
    listening_ports,
    option,
    resolved,
    scheduler_address,
    services,
)


def test_dask_cluster_labels_point_at_a_compose_scheduler(worker_settings: Settings) -> None:
    clusters = worker_settings.processor.dask_clusters
    addresses = [cluster for cluster in clusters.values() if isinstance(cluster, AddressDaskCluster)]
    assert addresses, "no label names the compose Dask cluster"
    for cluster in clusters.values():
        if isinstance(cluster, AddressDaskCluster | GatewayDaskCluster):
            host, port = endpoint(cluster.address)
            assert host in services(), f"{cluster.address}: {host} is not a compose service"
            assert port in listening_ports(host), f"{cluster.address}: {host} listens on {listening_ports(host)}"
        if isinstance(cluster, AddressDaskCluster):
            assert scheduler_address(endpoint(cluster.address)[0]) == endpoint(cluster.address)


def test_dask_clusters_setting_is_json_the_settings_accept() -> None:
    raw = resolved(environment(WORKER)["RS_EOPF_DASK_CLUSTERS"])
    assert isinstance(json.loads(raw), dict)
    assert ProcessorSettings.model_validate({"dask_clusters": json.loads(raw)}).dask_clusters


def test_dask_workers_join_the_scheduler() -> None:
    args = command_of(DASK_WORKER)
    assert services()[DASK_WORKER].get("entrypoint") == [DASK] and args[0] == "worker"
    assert endpoint(args[1]) == scheduler_address(SCHEDULER), f"{DASK_WORKER} joins {args[1]}"
    assert services()[DASK_WORKER]["depends_on"][SCHEDULER]["condition"] == "service_healthy"
    # One worker process per container, on a fixed dashboard port: its healthcheck probes that port.
    assert option(args, "--nworkers") == "1"
    assert int(option(args, "--dashboard-address").rsplit(":", 1)[1]) in listening_ports(DASK_WORKER)


def test_worker_and_dask_services_run_one_image() -> None:
    """The EOPF driver (in the worker) and the Dask cluster must run the same eopf, processor code and dask."""
    images = {name: (services()[name]["image"], services()[name].get("build")) for name in (WORKER, SCHEDULER)}
    images[DASK_WORKER] = (services()[DASK_WORKER]["image"], services()[DASK_WORKER].get("build"))
    assert len({(image, json.dumps(build, sort_keys=True)) for image, build in images.values()}) == 1, images
    assert services()[WORKER]["image"].startswith("${RS_IMAGE")


def test_dask_commands_come_from_the_eopf_venv_of_the_image() -> None:
    executable = dockerfile_env()["RS_EOPF_EXECUTABLE"]
    assert str(Path(executable).with_name("dask")) == DASK
    assert "RS_EOPF_EXECUTABLE" not in environment(WORKER), "the image sets it; compose must not point elsewhere"


@pytest.mark.parametrize("name", [WORKER, DASK_WORKER])
def test_workers_and_dask_workers_are_replicated(name: str) -> None:
    assert int(resolved(str(services()[name]["deploy"]["replicas"]))) >= 2
    assert not services()[name].get("ports"), f"{name}: replicas cannot publish a fixed host port"
    assert "container_name" not in services()[name]
