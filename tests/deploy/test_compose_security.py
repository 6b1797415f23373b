"""Nothing open by default in docker-compose.yml: what is published, what needs a credential, what only a test
profile runs; and every documented setting passes through `.env`. Static checks: no engine, no stack."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from rs_simulator.app import create_app
from rs_simulator.settings import SimulatorSettings
from tests.support.compose import (
    DOCKERFILE,
    ENV_EXAMPLE,
    PENDING_SETTINGS,
    PROCESSING_WORKER,
    ROOT,
    WORKER,
    WORKERS,
    compose,
    compose_config,
    endpoint,
    environment,
    interpolated_names,
    listening_ports,
    resolved,
    services,
    settings_env_names,
)

GATEWAY = "gateway"
TEMPLATES = ROOT / "deploy" / "gateway" / "templates"
LOOPBACK = "127.0.0.1"
# Worker variables whose value comes from a differently named .env variable, and why.
ALIASES = {
    # The workers' S3 account is created by the object store from the same two variables.
    "AWS_ACCESS_KEY_ID": "RS_S3_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "RS_S3_SECRET_ACCESS_KEY",
}
# Worker variables fixed by the compose file itself, and why.
FIXED = {
    "RS_HEALTH_HOST": "the healthcheck probes the endpoint from inside the container",
    "RS_HEALTH_PORT": "the healthcheck and `expose` name the same port",
}
# Settings the image fixes (Dockerfile ENV): Compose must not point them elsewhere.
IMAGE_SET = {"RS_EOPF_EXECUTABLE"}
STATION_CREDENTIAL = re.compile(r"^(CADIP|AUXIP|PRIP)_(CLIENT_ID|CLIENT_SECRET|USERNAME|PASSWORD)$")


def published(name: str) -> list[tuple[str, int]]:
    """(host address, container port) of each `ports` entry, as .env.example resolves it."""
    result = []
    for spec in services()[name].get("ports", []):
        parts = resolved(str(spec)).split(":")
        assert len(parts) == 3, f"{name}: publish as HOST_IP:HOST_PORT:CONTAINER_PORT, not {spec}"
        result.append((parts[0], int(parts[2])))
    return result


def networks(name: str) -> set[str]:
    return set(services()[name].get("networks", ["default"]))  # a list, or a mapping of network names


@pytest.fixture(scope="module")
def gateway_config() -> str:
    return (TEMPLATES / "gateway.conf.template").read_text()


def server_blocks(config: str) -> dict[int, str]:
    """`listen` port -> the text of its `server { ... }` block (blocks hold no nested server)."""
    blocks: dict[int, str] = {}
    for match in re.finditer(r"^server \{\n(.*?)^\}", config, re.MULTILINE | re.DOTALL):
        port = int(re.search(r"^\s*listen (\d+);", match[1], re.MULTILINE)[1])  # type: ignore[index]
        blocks[port] = match[1]
    return blocks


# --- what is published ---


def test_only_the_gateway_publishes_beyond_loopback() -> None:
    for name in services():
        for host, port in published(name):
            if name != GATEWAY:
                assert services()[name].get("ports") and all(
                    str(spec).startswith(f"{LOOPBACK}:") for spec in services()[name]["ports"]
                ), f"{name} publishes {port} on {host}: only the gateway may follow RS_PUBLISH_IP"


@pytest.mark.parametrize("name", ["temporal-ui", "dask-scheduler", "jaeger", "stac-api", "pgstac", "seaweedfs"])
def test_uis_and_backends_are_not_published(name: str) -> None:
    assert not services()[name].get("ports"), f"{name} must be reached through the gateway or not at all"


def test_every_gateway_port_is_a_server_of_its_config(gateway_config: str) -> None:
    blocks = server_blocks(gateway_config)
    assert {port for _, port in published(GATEWAY)} == set(blocks) == listening_ports(GATEWAY) - {80}


def test_web_uis_need_a_login(gateway_config: str) -> None:
    for port, block in server_blocks(gateway_config).items():
        upstream = re.search(r"proxy_pass http://([\w-]+):(\d+);", block)
        assert upstream, f"gateway :{port} proxies nothing"
        if upstream[1] == "stac-api":
            continue
        assert 'auth_basic "' in block and "auth_basic_user_file /etc/nginx/conf.d/ops.htpasswd;" in block, port
        assert upstream[1] in services() and int(upstream[2]) in listening_ports(upstream[1])
    htpasswd = (TEMPLATES / "ops.htpasswd.template").read_text().strip()
    assert htpasswd == "${RS_OPS_USER}:{PLAIN}${RS_OPS_PASSWORD}"


def test_catalog_writes_need_the_api_key(gateway_config: str) -> None:
    block = server_blocks(gateway_config)[8082]
    assert "proxy_pass http://stac-api:8082;" in block
    # The refusal comes before the proxy, in the only location.
    assert block.count("location ") == 1
    assert block.index("if ($catalog_refused)") < block.index("proxy_pass")
    assert "return 401" in block
    reads = re.search(r"map \"\$request_method \$uri\" \$catalog_read \{(.*?)\n\}", gateway_config, re.DOTALL)
    assert reads, "the catalog's read rule"
    rules = [line.split()[0:-1] for line in reads[1].strip().splitlines()]
    # Nothing but reads pass without the key: no write method, no path other than /search.
    assert rules == [["default"], ['"~^(GET|HEAD|OPTIONS)', '"'], ['"POST', '/search"']], rules
    key = re.search(r"map \$http_x_api_key \$catalog_key_ok \{(.*?)\n\}", gateway_config, re.DOTALL)
    assert key and '"${CATALOG_API_KEY}" 1;' in key[1] and "default              0;" in key[1]
    assert re.search(
        r'map "\$catalog_read\$catalog_key_ok" \$catalog_refused \{\s*default 0;\s*"00"\s+1;', gateway_config
    )


def test_the_gateway_refuses_a_weak_key_before_nginx_starts() -> None:
    script = ROOT / "deploy" / "gateway" / "10-check-secrets.sh"
    mounts = [str(volume) for volume in services()[GATEWAY]["volumes"]]
    assert f"./{script.relative_to(ROOT)}:/docker-entrypoint.d/10-check-secrets.sh:ro" in mounts
    assert script.stat().st_mode & 0o111, "the nginx image runs only executable entrypoint scripts"
    assert "check CATALOG_API_KEY" in script.read_text() and "check RS_OPS_PASSWORD" in script.read_text()
    gateway = environment(GATEWAY)
    assert gateway["CATALOG_API_KEY"] == environment(WORKER)["CATALOG_API_KEY"]
    assert set(re.findall(r"\w+", gateway["NGINX_ENVSUBST_FILTER"])) == {
        "CATALOG_API_KEY",
        "RS_OPS_USER",
        "RS_OPS_PASSWORD",
    }


def test_the_catalog_api_is_reachable_only_through_the_gateway() -> None:
    assert compose()["networks"]["catalog"].get("internal") is True
    members = {name for name in services() if "catalog" in networks(name)}
    assert members == {"pgstac", "pgstac-migrate", "stac-api", GATEWAY}
    assert networks("stac-api") == {"catalog"} and networks("pgstac") == {"catalog"}
    for name in WORKERS:
        assert endpoint(resolved(environment(name)["CATALOG_URL"]))[0] == GATEWAY


# --- the simulator's test controls ---


def simulator_settings(name: str) -> SimulatorSettings:
    values = {key.removeprefix("SIMULATOR_").lower(): resolved(value) for key, value in environment(name).items()}
    return SimulatorSettings(**values)


def simulator_client(name: str) -> httpx.AsyncClient:
    """The simulator app as the compose service `name` configures it, in process."""
    transport = httpx.ASGITransport(app=create_app(simulator_settings(name)))
    return httpx.AsyncClient(transport=transport, base_url="http://simulator")


async def test_the_default_simulator_has_no_fault_or_stats_endpoint() -> None:
    simulator = services()["simulator"]
    assert "profiles" not in simulator and not simulator.get("ports")
    async with simulator_client("simulator") as client:
        assert (await client.get("/health")).status_code == 200
        assert (await client.put("/_faults", json={"outage": True})).status_code == 404
        assert (await client.get("/_stats")).status_code == 404
        assert (await client.post("/_catalogue/sessions", json={"chunks_per_channel": 1})).status_code == 404


async def test_the_test_profile_simulator_has_them_on_loopback() -> None:
    assert services()["simulator-test"]["profiles"] == ["test"]
    assert all(host == LOOPBACK for host, _ in published("simulator-test"))
    async with simulator_client("simulator-test") as client:
        assert (await client.get("/_stats")).status_code == 200


# --- Temporal ---


def test_history_shards_are_set_deliberately() -> None:
    shards = int(resolved(environment("temporal")["NUM_HISTORY_SHARDS"]))
    assert shards > 4 and shards & (shards - 1) == 0, "a power of two above the image's default of 4"


def test_dynamic_config_holds_no_development_setting() -> None:
    temporal = services()["temporal"]
    name = Path(environment("temporal")["DYNAMIC_CONFIG_FILE_PATH"]).name
    host = next(str(v).split(":")[0] for v in temporal["volumes"] if "dynamicconfig" in str(v))
    config = yaml.safe_load((ROOT / host / name).read_text())
    assert "system.forceSearchAttributesCacheRefreshOnRead" not in config
    assert set(config) == {"limit.maxIDLength"}, "every key here needs a production reason in its comment"


def test_no_minio_image() -> None:
    """MinIO's community images are frozen (no more security fixes): the object store is SeaweedFS."""
    images = {service["image"] for service in services().values()}
    assert not [image for image in images if "minio" in image]
    assert any(image.startswith("chrislusf/seaweedfs:") for image in images)


# --- worker roles ---


@pytest.mark.parametrize(("name", "role"), [(WORKER, "staging"), (PROCESSING_WORKER, "processing")])
def test_each_role_is_a_service_with_limits_and_a_readiness_check(name: str, role: str) -> None:
    service = services()[name]
    assert service["command"] == ["worker", "--role", role]
    limits = service["deploy"]["resources"]["limits"]
    assert float(resolved(str(limits["cpus"]))) > 0 and resolved(str(limits["memory"]))
    assert int(resolved(str(service["deploy"]["replicas"]))) >= 1
    probe = " ".join(service["healthcheck"]["test"])
    port = environment(name)["RS_HEALTH_PORT"]
    assert f"http://127.0.0.1:{port}/readyz" in probe and int(port) in listening_ports(name)


def test_both_roles_share_one_environment() -> None:
    assert environment(WORKER) == environment(PROCESSING_WORKER)


# --- every documented setting passes through .env ---


def test_every_setting_is_passed_from_the_same_named_env_variable() -> None:
    env = environment(WORKER)
    missing = sorted(set(settings_env_names()) - set(env) - IMAGE_SET)
    assert not missing, f"settings .env cannot set: {missing}"
    for key, value in env.items():
        names = interpolated_names(value)
        if key in FIXED:
            assert not names, f"{key}: {FIXED[key]}"
        elif key in ALIASES:
            assert names == {ALIASES[key]}, key
        elif STATION_CREDENTIAL.match(key):
            # The compose stations are the simulator: one set of credentials (real stations: RS_STATIONS_FILE).
            assert names == {f"SIMULATOR_{STATION_CREDENTIAL.match(key)[2]}"}, key  # type: ignore[index]
        else:
            assert names == {key}, f"{key}={value}: pass it as ${{{key}...}}"
    assert set(env) >= PENDING_SETTINGS


# --- the image builds without BuildKit ---


def test_dockerfile_needs_no_buildkit() -> None:
    """Compose v1 and a plain `docker build` use the classic builder: no BuildKit-only syntax."""
    text = DOCKERFILE.read_text()
    assert not re.search(r"^#\s*syntax=", text, re.MULTILINE)
    assert "--mount=" not in text and "--link" not in text and "--chmod" not in text and "--parents" not in text
    assert not re.search(r"<<-?\s*['\"]?[A-Z]+", text), "heredocs need BuildKit"


# --- the file as Compose renders it for production: Temporal Cloud, the gateway on every interface ---

PRODUCTION = {
    "RS_PUBLISH_IP": "0.0.0.0",
    "TEMPORAL_ADDRESS": "rs-ondemand.a1b2c.tmprl.cloud:7233",
    "TEMPORAL_NAMESPACE": "rs-ondemand.a1b2c",
    "TEMPORAL_API_KEY": "production-temporal-api-key",
    "CATALOG_API_KEY": "production-catalog-api-key",
    "RS_OPS_PASSWORD": "production-ops-password",
    "S3_ADMIN_SECRET_ACCESS_KEY": "production-s3-admin-secret",
    "RS_S3_SECRET_ACCESS_KEY": "production-s3-worker-secret",
    "RS_STAGING_REPLICAS": "6",
}
# Which services may see each secret (least exposure).
SECRET_READERS = {
    "production-temporal-api-key": set(WORKERS),
    "production-catalog-api-key": {*WORKERS, GATEWAY},
    "production-ops-password": {GATEWAY},
    "production-s3-admin-secret": {"seaweedfs"},
    "production-s3-worker-secret": {*WORKERS, "seaweedfs"},
}


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`docker-compose config` of the file with .env.example and the production values above."""
    lines = [line for line in ENV_EXAMPLE.read_text().splitlines() if line.split("=", 1)[0] not in PRODUCTION]
    env_file = tmp_path_factory.mktemp("compose") / "production.env"
    env_file.write_text("\n".join([*lines, *(f"{key}={value}" for key, value in PRODUCTION.items())]) + "\n")
    return dict(yaml.safe_load(compose_config(env_file)))


def test_rendered_production_publishes_only_the_gateway_beyond_loopback(production: dict[str, Any]) -> None:
    for name, service in production["services"].items():
        for spec in service.get("ports", []):
            host = spec["host_ip"] if isinstance(spec, dict) else str(spec).split(":")[0]
            assert host == LOOPBACK or name == GATEWAY, f"{name} publishes {spec}"
    assert {str(spec).split(":")[0] for spec in production["services"][GATEWAY]["ports"]} == {"0.0.0.0"}


def test_rendered_production_has_no_fault_endpoint_outside_the_test_profile(production: dict[str, Any]) -> None:
    for name, service in production["services"].items():
        controls = service.get("environment", {}).get("SIMULATOR_TEST_CONTROLS")
        if service.get("entrypoint") == ["python", "-m", "rs_simulator"]:
            assert controls in ("false", "true"), f"{name}: say whether the test controls are on"
        if controls == "true":
            assert service.get("profiles") == ["test"], f"{name} serves /_faults outside the test profile"


def test_rendered_production_has_no_unauthenticated_write_path(production: dict[str, Any]) -> None:
    services_ = production["services"]
    assert production["networks"]["catalog"]["internal"] is True
    assert set(services_["stac-api"]["networks"]) == {"catalog"} and not services_["stac-api"].get("ports")
    for name in WORKERS:
        env = services_[name]["environment"]
        assert env["CATALOG_URL"] == "http://gateway:8082"
        assert env["CATALOG_API_KEY"] == services_[GATEWAY]["environment"]["CATALOG_API_KEY"]


def test_rendered_production_gives_each_secret_only_to_its_readers(production: dict[str, Any]) -> None:
    for secret, readers in SECRET_READERS.items():
        seen = {name for name, service in production["services"].items() if secret in json.dumps(service)}
        assert seen == readers, f"{secret} reaches {sorted(seen)}"


def test_rendered_production_points_the_workers_at_temporal_cloud(production: dict[str, Any]) -> None:
    for name in WORKERS:
        env = production["services"][name]["environment"]
        assert env["TEMPORAL_ADDRESS"] == PRODUCTION["TEMPORAL_ADDRESS"]
        assert env["TEMPORAL_API_KEY"] == PRODUCTION["TEMPORAL_API_KEY"]
    assert production["services"][WORKER]["deploy"]["replicas"] == 6
