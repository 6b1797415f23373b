"""The Kubernetes manifests (deploy/kubernetes: Kustomize base, simulator component, overlays), rendered with
kubectl's Kustomize and validated offline against the Kubernetes API schemas (kubernetes-validate, strict: an
unknown field is an error); then the values that matter: replicas, limits, probes, and no secret inlined."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from rs_ondemand.config import Settings
from tests.support.compose import (
    NOT_SECRET,
    PENDING_SETTINGS,
    SECRET_KEY,
    settings_env_names,
)

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
KUBECTL = str(Path(sys.executable).with_name("kubectl"))
OVERLAYS = ["production", "demo"]
# The oldest Kubernetes minor we support and the newest the validator knows.
VERSIONS = ["1.34.0", kubernetes_validate.latest_version()]
ROLES = {"rs-ondemand-staging": "staging", "rs-ondemand-processing": "processing"}
TLS_MOUNT = "/etc/rs-ondemand/temporal-tls"


@functools.cache
def render(target: str) -> list[dict[str, Any]]:
    """`kubectl kustomize` of an overlay (or `base`), as a list of objects."""
    path = KUSTOMIZE / ("base" if target == "base" else f"overlays/{target}")
    result = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(target: str, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in render(target) if doc["kind"] == kind]


def workers(target: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in of_kind(target, "Deployment") if doc["metadata"]["name"] in ROLES}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def kustomization(target: str) -> dict[str, Any]:
    return dict(yaml.safe_load((KUSTOMIZE / "overlays" / target / "kustomization.yaml").read_text()))


# --- rendered and valid ---


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("target", ["base", *OVERLAYS])
def test_manifests_render_and_match_the_kubernetes_schemas(target: str, version: str) -> None:
    documents = render(target)
    assert {doc["kind"] for doc in documents} >= {"Deployment", "ConfigMap", "ServiceAccount", "NetworkPolicy"}
    for doc in documents:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_refuses_what_kubernetes_would() -> None:
    """A control: the same validation fails on a misspelt field and on a wrong type."""
    deployment = json.loads(json.dumps(workers("production")["rs-ondemand-staging"]))
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)
    deployment = json.loads(json.dumps(workers("production")["rs-ondemand-staging"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eighty"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)


# --- the values that matter ---


@pytest.mark.parametrize("target", OVERLAYS)
def test_replicas_are_the_overlays(target: str) -> None:
    wanted = {entry["name"]: entry["count"] for entry in kustomization(target).get("replicas", [])}
    assert wanted, f"{target} sets no replicas"
    for name, deployment in workers(target).items():
        if name in wanted:
            assert deployment["spec"]["replicas"] == wanted[name], name


def test_production_runs_several_staging_workers_and_processing_workers() -> None:
    replicas = {name: deployment["spec"]["replicas"] for name, deployment in workers("production").items()}
    assert replicas["rs-ondemand-staging"] >= 2 and replicas["rs-ondemand-processing"] >= 1


@pytest.mark.parametrize("target", ["base", *OVERLAYS])
def test_every_container_has_requests_and_limits(target: str) -> None:
    for deployment in of_kind(target, "Deployment"):
        for spec in deployment["spec"]["template"]["spec"]["containers"]:
            resources = spec.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{deployment['metadata']['name']} {kind}"


def test_production_patch_raises_the_processing_limits() -> None:
    limits = container(workers("production")["rs-ondemand-processing"])["resources"]["limits"]
    assert limits == {"cpu": "4", "memory": "12Gi"}


@pytest.mark.parametrize("target", OVERLAYS)
def test_each_worker_runs_its_role_and_is_probed_on_its_health_endpoint(target: str) -> None:
    for name, deployment in workers(target).items():
        spec = container(deployment)
        assert spec["args"] == ["worker", "--role", ROLES[name]]
        env = {item["name"]: item.get("value") for item in spec["env"]}
        assert env["RS_HEALTH_HOST"] == "0.0.0.0"
        (port,) = spec["ports"]
        assert port["name"] == "health" and port["containerPort"] == int(env["RS_HEALTH_PORT"])
        probes = {kind: spec[kind]["httpGet"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
        assert all(probe["port"] == "health" for probe in probes.values())
        assert [probe["path"] for probe in probes.values()] == ["/readyz", "/readyz", "/livez"]


@pytest.mark.parametrize("target", OVERLAYS)
def test_pods_are_locked_down(target: str) -> None:
    for deployment in of_kind(target, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
        for spec in pod["containers"]:
            security = spec["securityContext"]
            assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
            assert security["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("target", OVERLAYS)
def test_nothing_is_exposed(target: str) -> None:
    kinds = {doc["kind"] for doc in render(target)}
    assert not kinds & {"Ingress", "Route", "Gateway", "HTTPRoute"}
    for service in of_kind(target, "Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]["name"]
    selected = [policy["spec"]["podSelector"]["matchLabels"] for policy in of_kind(target, "NetworkPolicy")]
    for deployment in of_kind(target, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(selector.items() <= labels.items() for selector in selected), deployment["metadata"]["name"]


# --- secrets are never inlined ---


@pytest.mark.parametrize("target", ["base", *OVERLAYS])
def test_no_secret_is_inlined(target: str) -> None:
    documents = render(target)
    assert not [doc for doc in documents if doc["kind"] == "Secret"], "Secrets are created in the cluster, not here"
    for config in of_kind(target, "ConfigMap"):
        secret_like = [key for key in config["data"] if SECRET_KEY.search(key) and not NOT_SECRET.search(key)]
        assert not secret_like, f"{config['metadata']['name']} holds {secret_like}: put them in the Secret"
    for deployment in of_kind(target, "Deployment"):
        for spec in deployment["spec"]["template"]["spec"]["containers"]:
            for item in spec.get("env", []):
                if SECRET_KEY.search(item["name"]) and not NOT_SECRET.search(item["name"]):
                    assert "value" not in item, f"{item['name']} must come from a secretKeyRef"
            sources = [source for source in spec.get("envFrom", []) if "secretRef" in source]
            assert sources and all(not source["secretRef"].get("optional") for source in sources)


def test_no_kustomization_generates_a_secret() -> None:
    for path in KUSTOMIZE.rglob("kustomization.yaml"):
        assert "secretGenerator" not in yaml.safe_load(path.read_text()), path


# --- the configuration is what the workers read ---


@pytest.mark.parametrize("target", OVERLAYS)
def test_config_holds_settings_the_workers_load(target: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (config,) = of_kind(target, "ConfigMap")
    unknown = sorted(set(config["data"]) - set(settings_env_names()) - PENDING_SETTINGS)
    assert not unknown, f"{target}: keys no setting reads (a typo is silently ignored): {unknown}"
    for name in settings_env_names():
        monkeypatch.delenv(name, raising=False)
    for key, value in config["data"].items():
        monkeypatch.setenv(key, value)
    settings = Settings.load(env_file=tmp_path / "none")
    assert settings.temporal.address == config["data"]["TEMPORAL_ADDRESS"]
    assert settings.processor.dask_clusters


def test_production_reaches_temporal_cloud_with_the_mounted_certificate() -> None:
    data = of_kind("production", "ConfigMap")[0]["data"]
    assert data["TEMPORAL_ADDRESS"].endswith(".tmprl.cloud:7233")
    for deployment in workers("production").values():
        mounts = {mount["name"]: mount["mountPath"] for mount in container(deployment)["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
        assert mounts["temporal-tls"] == TLS_MOUNT
        assert volumes["temporal-tls"]["secret"]["secretName"] == "rs-ondemand-temporal-tls"
    # The keys of a kubernetes.io/tls Secret (`kubectl create secret tls`).
    assert data["TEMPORAL_TLS_CLIENT_CERT_PATH"] == f"{TLS_MOUNT}/tls.crt"
    assert data["TEMPORAL_TLS_CLIENT_KEY_PATH"] == f"{TLS_MOUNT}/tls.key"


def test_production_processes_on_dask_gateway() -> None:
    data = of_kind("production", "ConfigMap")[0]["data"]
    clusters = json.loads(data["RS_EOPF_DASK_CLUSTERS"])
    assert clusters and all(cluster["cluster_type"] == "gateway" for cluster in clusters.values())


def test_the_simulator_component_serves_no_test_controls_and_only_to_staging() -> None:
    simulator = next(doc for doc in of_kind("demo", "Deployment") if doc["metadata"]["name"] == "rs-ondemand-simulator")
    env = {item["name"]: item.get("value") for item in container(simulator)["env"]}
    assert env["SIMULATOR_TEST_CONTROLS"] == "false"
    policy = next(doc for doc in of_kind("demo", "NetworkPolicy") if doc["metadata"]["name"] == "rs-ondemand-simulator")
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "rs-ondemand",
                    "app.kubernetes.io/component": "staging-worker",
                }
            }
        }
    ]
    data = of_kind("demo", "ConfigMap")[0]["data"]
    assert data["CADIP_URL"].startswith("http://rs-ondemand-simulator:8090/")
    assert not [doc for doc in render("production") if "simulator" in doc["metadata"]["name"]]
