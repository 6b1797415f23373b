"""Static checks of the deployment files (docker-compose.yml, .env.example, Dockerfile): no engine, no stack."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from rs_ondemand.config import ProcessorSettings, Settings, StationSettings, TelemetrySettings
from rs_ondemand.models.processor_run import AddressDaskCluster, GatewayDaskCluster
from rs_ondemand.stack.search_attributes import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# The two worker roles share one environment (an anchor of the compose file); WORKER stands for both.
WORKER, PROCESSING_WORKER = "staging-worker", "processing-worker"
WORKERS = (WORKER, PROCESSING_WORKER)
# Read by the station-registry work (branch `stations`) and passed to the workers already; drop a name from here
# once config.py reads it.
PENDING_SETTINGS = {"RS_STATIONS_FILE", "CATALOG_API_KEY"}
# Printed as links for the operators' browsers, so not a compose service name.
BROWSER_FACING = {"TEMPORAL_UI_URL"}
SECRET_KEY = re.compile(r"PASSWORD|SECRET|KEY|PWD|TOKEN")
# Names that match SECRET_KEY but hold no secret: key ids, the paths of key files, token endpoints.
NOT_SECRET = re.compile(r"_ID$|_PATH$|_URL$")
# Values an operator must choose: no default may stand in for them (".env.example" holds placeholders only).
SECRET_VALUE = re.compile(r"PASSWORD|SECRET|PWD")
# `${VAR}`, `${VAR:-default}`, `${VAR:?message}` (and the forms without colon), or `$VAR`.
INTERPOLATION = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_]\w*)(?P<rest>[^}]*)\}|(?P<bare>[A-Za-z_]\w*))")
# A whole value that is one interpolation with no default: `${VAR}` or `${VAR:?message}`.
INTERPOLATED_ONLY = re.compile(r"\$\{[A-Za-z_]\w*(?::?\?[^}]*)?\}")
DEFAULT_PORTS = {"http": 80, "https": 443}


@functools.cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def environment(name: str) -> dict[str, str]:
    env = services()[name].get("environment", {})
    assert isinstance(env, dict), f"{name}: write environment as a mapping"
    return env


@functools.cache
def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=VALUE: {line!r}"
            value = value.strip()
            if (
                len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
            ):  # quoted: one value, as Compose reads it
                value = value[1:-1]
            values[key.strip()] = value
    return values


def interpolated_names(text: str) -> set[str]:
    text = text.replace("$$", "")  # `$$` is a literal dollar for the container's shell
    return {match["braced"] or match["bare"] for match in INTERPOLATION.finditer(text)}


def settings_env_names() -> dict[str, FieldInfo]:
    """Every environment variable `Settings.load()` reads, from the settings classes themselves."""
    names: dict[str, FieldInfo] = {}
    for part in Settings.model_fields.values():
        kind = part.annotation
        assert isinstance(kind, type) and issubclass(kind, BaseSettings), kind
        prefix = kind.model_config.get("env_prefix", "")
        for field_name, field in kind.model_fields.items():
            alias = field.validation_alias if isinstance(field.validation_alias, str) else None
            name = alias or f"{prefix}{field_name}"
            names[name if kind.model_config.get("case_sensitive") else name.upper()] = field
    return names


def needs_setting(field: FieldInfo) -> bool:
    """A field without a default usable in a container: none, or a loopback address (fields whose unset value
    switches a feature off, marked `unset_means_off`, need nothing)."""
    if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("unset_means_off"):
        return False
    if field.is_required() or field.default is None:
        return True
    return isinstance(field.default, str) and any(host in field.default for host in ("127.0.0.1", "localhost"))


def endpoint(value: str) -> tuple[str, int]:
    if "://" not in value:  # TEMPORAL_ADDRESS is gRPC host:port
        host, _, port = value.rpartition(":")
        return host, int(port)
    parts = urlsplit(value)
    assert parts.hostname, value
    return parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme]


def listening_ports(name: str) -> set[int]:
    """Container ports of a service, from `expose` and the container side of `ports`."""
    service = services()[name]
    ports = {int(str(port).split("/")[0]) for port in service.get("expose", [])}
    for spec in service.get("ports", []):
        target = spec["target"] if isinstance(spec, dict) else str(spec).rsplit(":", 1)[-1]
        ports.add(int(str(target).split("/")[0]))
    return ports


def worker_urls() -> dict[str, str]:
    """The worker's endpoints as the example .env resolves them."""
    return {
        key: resolved(value)
        for key, value in environment(WORKER).items()
        if key.endswith(("_URL", "_ADDRESS")) and key not in BROWSER_FACING
    }


def resolved(value: str) -> str:
    """`value` as Compose interpolates it with the variables of .env.example (and their defaults)."""

    def one(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        if name in env_example():
            return env_example()[name]
        rest = match["rest"] or ""
        assert rest.startswith((":-", "-")), f"{name} has no value in .env.example and no default"
        return rest.split("-", 1)[1]

    return "$".join(INTERPOLATION.sub(one, part) for part in value.split("$$"))


def command_of(name: str) -> list[str]:
    command = services()[name].get("command", [])
    assert isinstance(command, list), f"{name}: write command as a list"
    return [resolved(str(arg)) for arg in command]


def option(args: list[str], flag: str) -> str:
    """The value after `flag` (`--flag value`) or in `--flag=value`."""
    for i, arg in enumerate(args):
        if arg == flag:
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {args}")


# --- (a) the worker's variables are the ones the settings read ---


def test_worker_sets_only_names_the_settings_read() -> None:
    accepted = set(settings_env_names()) | PENDING_SETTINGS
    unknown = sorted(set(environment(WORKER)) - accepted)
    assert not unknown, f"worker variables no settings class reads: {unknown}"


def test_worker_sets_every_setting_without_a_container_default() -> None:
    needed = {name for name, field in settings_env_names().items() if needs_setting(field)}
    # The rule above must at least find the endpoints docs/interface.md names.
    assert {"TEMPORAL_ADDRESS", "S3_ENDPOINT_URL", "CATALOG_URL", "CADIP_URL", "AUXIP_URL", "PRIP_URL"} <= needed
    missing = sorted(needed - set(environment(WORKER)))
    assert not missing, f"worker lacks settings that have no usable default in a container: {missing}"


def test_worker_values_are_non_empty_strings() -> None:
    for key, value in environment(WORKER).items():
        assert isinstance(value, str) and value, f"worker {key}: quote it as a non-empty string"


# --- (b) the worker reaches compose services on the ports they listen on ---


def test_worker_urls_point_at_compose_services_and_their_ports() -> None:
    urls = worker_urls()
    assert "TEMPORAL_ADDRESS" in urls and "S3_ENDPOINT_URL" in urls
    for key, value in urls.items():
        if not value:
            continue  # an endpoint left empty is a feature switched off (an RS-Server login, ...)
        host, port = endpoint(value)
        assert host in services(), f"{key}={value}: {host} is not a compose service"
        assert port in listening_ports(host), f"{key}={value}: {host} listens on {sorted(listening_ports(host))}"


@pytest.mark.parametrize("station", StationSettings.__subclasses__(), ids=lambda cls: cls.kind)
def test_station_urls_follow_the_simulator_layout(station: type[StationSettings]) -> None:
    prefix = station.model_config.get("env_prefix", "")
    env = environment(WORKER)
    paths = {suffix: urlsplit(resolved(env[f"{prefix}{suffix}"])).path for suffix in ("URL", "ODATA_URL", "TOKEN_URL")}
    assert paths == {
        "URL": f"/{station.kind}/stac",
        "ODATA_URL": f"/{station.kind}",
        "TOKEN_URL": f"/{station.kind}/oauth2/token",
    }


def test_worker_station_credentials_are_the_simulators() -> None:
    worker, simulator = environment(WORKER), environment("simulator")
    for station in StationSettings.__subclasses__():
        prefix = station.model_config.get("env_prefix", "")
        for key in ("CLIENT_ID", "CLIENT_SECRET", "USERNAME", "PASSWORD"):
            assert worker[f"{prefix}{key}"] == simulator[f"SIMULATOR_{key}"], f"{prefix}{key}"


def test_commands_and_healthchecks_use_the_declared_ports() -> None:
    for name, service in services().items():
        command = service.get("command", [])
        if isinstance(command, list) and "--port" in command:
            port = int(command[command.index("--port") + 1])
            assert port in listening_ports(name), f"{name} serves on {port} but declares {listening_ports(name)}"
        test = " ".join(service.get("healthcheck", {}).get("test", []))
        for match in re.finditer(r"https?://(?:127\.0\.0\.1|localhost):(\d+)", test):
            assert int(match[1]) in listening_ports(name), f"{name} healthcheck probes port {match[1]}"


# --- (c) every variable the compose file uses is documented ---


def test_every_interpolated_variable_is_in_env_example() -> None:
    used = interpolated_names(COMPOSE_FILE.read_text())
    assert used, "the compose file should take its settings from the environment"
    missing = sorted(used - set(env_example()))
    assert not missing, f"used in docker-compose.yml but missing from .env.example: {missing}"


def test_env_example_lists_nothing_unused() -> None:
    unused = sorted(set(env_example()) - interpolated_names(COMPOSE_FILE.read_text()))
    assert not unused, f".env.example variables docker-compose.yml never uses: {unused}"


# --- (d) no secret values in the compose file ---


def test_secret_keys_are_interpolated_without_default() -> None:
    for name in services():
        for key, value in environment(name).items():
            if SECRET_KEY.search(key) and not NOT_SECRET.search(key):
                assert INTERPOLATED_ONLY.fullmatch(str(value)), f"{name}: {key} must be ${{VAR}} or ${{VAR:?...}}"


def test_env_example_secrets_are_placeholders() -> None:
    """A secret Compose requires (`${VAR:?...}`) is a change-me placeholder; optional ones (`${VAR}`) may be empty."""
    secret_vars = {
        var
        for name in services()
        for key, value in environment(name).items()
        if SECRET_VALUE.search(key) and ":?" in str(value)
        for var in interpolated_names(str(value))
    }
    assert secret_vars
    for var in sorted(secret_vars):
        assert env_example()[var].startswith("change-me"), f".env.example {var}: use a change-me placeholder"


# --- (e) dependencies ---


def test_depends_on_targets_exist_and_conditions_fit() -> None:
    for name, service in services().items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for target, spec in depends.items():
            assert target in services(), f"{name} depends on unknown service {target}"
            condition = spec.get("condition")
            if condition == "service_healthy":
                assert "healthcheck" in services()[target], f"{name} waits for {target}, which has no healthcheck"
            elif condition == "service_completed_successfully":
                assert services()[target].get("restart") == "no", f"{target} is a one-shot job: restart 'no'"
            else:
                assert condition == "service_started", f"{name} -> {target}: {condition}"


def test_dependencies_on_services_with_a_healthcheck_wait_until_healthy() -> None:
    """`service_started` would let a dependent start against a server that is not listening yet."""
    for name, service in services().items():
        for target, spec in service.get("depends_on", {}).items():
            if "healthcheck" in services()[target]:
                assert spec.get("condition") == "service_healthy", f"{name} -> {target}: use service_healthy"


def test_dependencies_have_no_cycle() -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for target in services().get(name, {}).get("depends_on", {}):
                visit(target, (*path, name))
            done.add(name)

    for name in services():
        visit(name, ())


# --- (f) the worker's settings load, and the processors' Dask cluster is the one compose runs ---

DASK = "/app/.venv-eopf/bin/dask"
SCHEDULER, DASK_WORKER = "dask-scheduler", "dask-worker"
COLLECTOR, JAEGER = "otel-collector", "jaeger"


@pytest.fixture
def worker_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """The settings a worker container loads: its compose environment with the .env.example values, nothing else."""
    for name in [*settings_env_names(), "DASK_GATEWAY_PASSWORD", "JUPYTERHUB_API_TOKEN"]:
        monkeypatch.delenv(name, raising=False)
    for key, value in environment(WORKER).items():
        monkeypatch.setenv(key, resolved(value))
    return Settings.load(env_file=tmp_path / "no-env-file")


def test_worker_environment_loads_as_settings(worker_settings: Settings) -> None:
    assert worker_settings.temporal.address == "temporal:7233"
    assert worker_settings.telemetry.traces_exporter == "otlp"
    assert worker_settings.processor.otlp_endpoint
    assert set(worker_settings.processor.dask_clusters) >= {"local", "dask-l0"}


def scheduler_address(name: str) -> tuple[str, int]:
    """Where a `dask scheduler` service listens: its service name and `--port` (8786 unless given)."""
    args = command_of(name)
    assert services()[name].get("entrypoint") == [DASK] and args[0] == "scheduler", f"{name} is no dask scheduler"
    port = option(args, "--port") if any(arg.startswith("--port") for arg in args) else "8786"
    return name, int(port)


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


# --- (g) traces: worker and EOPF -> collector -> Jaeger ---


@functools.cache
def collector_config() -> dict[str, Any]:
    """The collector's config file, found through the compose mount its `--config` names."""
    args = command_of(COLLECTOR)
    target = option(args, "--config")
    for volume in services()[COLLECTOR].get("volumes", []):
        host, _, rest = str(volume).partition(":")
        if rest.split(":")[0] == target:
            path = ROOT / host
            assert path.is_file(), f"{COLLECTOR} mounts {path}, which does not exist"
            return yaml.safe_load(path.read_text())
    raise AssertionError(f"{COLLECTOR} reads {target}, which no volume mounts")


def otlp_receiver_port(protocol: str) -> int:
    receiver = collector_config()["receivers"]["otlp"]["protocols"][protocol]
    return endpoint(receiver["endpoint"])[1]


def test_worker_exports_otlp_http_to_the_collector(worker_settings: Settings) -> None:
    telemetry: TelemetrySettings = worker_settings.telemetry
    assert telemetry.traces_exporter == "otlp" and telemetry.exporter_otlp_endpoint
    host, port = endpoint(telemetry.exporter_otlp_endpoint)
    assert host == COLLECTOR and port == otlp_receiver_port("http") == 4318
    assert port in listening_ports(COLLECTOR)


def test_eopf_exports_otlp_grpc_to_the_collector(worker_settings: Settings) -> None:
    assert worker_settings.processor.otlp_endpoint
    host, port = endpoint(worker_settings.processor.otlp_endpoint)
    assert host == COLLECTOR and port == otlp_receiver_port("grpc") == 4317
    assert port in listening_ports(COLLECTOR)


def test_collector_config_pipelines_use_defined_components() -> None:
    config = collector_config()
    pipelines = config["service"]["pipelines"]
    assert "traces" in pipelines
    for kind in ("receivers", "processors", "exporters"):
        defined = set(config.get(kind) or {})
        used = {name for pipeline in pipelines.values() for name in pipeline.get(kind, [])}
        assert used <= defined, f"pipelines use undefined {kind}: {sorted(used - defined)}"
        assert defined <= used, f"{kind} defined but in no pipeline: {sorted(defined - used)}"
    assert set(config["service"].get("extensions", [])) == set(config.get("extensions") or {})
    assert pipelines["traces"]["receivers"] == ["otlp"]


def test_collector_listens_where_compose_says() -> None:
    config = collector_config()
    ports = {otlp_receiver_port("grpc"), otlp_receiver_port("http")}
    ports |= {endpoint(ext["endpoint"])[1] for ext in (config.get("extensions") or {}).values() if "endpoint" in ext}
    assert ports == listening_ports(COLLECTOR)
    for protocol in ("grpc", "http"):  # reachable from the other containers, not only from inside its own
        assert endpoint(config["receivers"]["otlp"]["protocols"][protocol]["endpoint"])[0] == "0.0.0.0"


def test_collector_exports_traces_to_jaeger() -> None:
    config = collector_config()
    for name in config["service"]["pipelines"]["traces"]["exporters"]:
        assert name.split("/")[0] == "otlp", f"{name}: Jaeger v2 takes OTLP"
        host, port = endpoint(config["exporters"][name]["endpoint"])
        assert host == JAEGER and port in listening_ports(JAEGER)
    assert services()[COLLECTOR]["depends_on"][JAEGER]["condition"] == "service_healthy"
    assert 16686 in listening_ports(JAEGER), "the Jaeger UI"


# --- consistency of the rest of the stack ---


def test_compose_file_uses_the_compose_specification() -> None:
    assert "version" not in compose()
    assert compose().get("volumes"), "state lives in named volumes"


def test_third_party_images_are_pinned() -> None:
    for name, service in services().items():
        image = service["image"]
        if image.startswith("${"):  # our own image, tag chosen at build time
            assert "build" in service, name
            continue
        _, _, tag = image.rpartition(":")
        assert tag and "/" not in tag and tag != "latest", f"{name}: pin {image} to a release tag"


def test_namespace_job_registers_the_search_attributes_of_the_code() -> None:
    job = environment("temporal-create-namespace")
    registered = dict(entry.split("=", 1) for entry in job["RS_SEARCH_ATTRIBUTES"].split())
    assert registered == SEARCH_ATTRIBUTES
    assert job["TEMPORAL_NAMESPACE"] == environment(WORKER)["TEMPORAL_NAMESPACE"]


def test_object_store_creates_the_workers_buckets_and_account() -> None:
    store, init, worker = environment("seaweedfs"), environment("seaweedfs-init"), environment(WORKER)
    for job in (store, init):
        assert job["RS_BUCKET"] == worker["RS_BUCKET"]
        assert job["RS_WORK_BUCKET"] == worker["RS_WORK_BUCKET"]
    assert store["RS_S3_ACCESS_KEY_ID"] == worker["AWS_ACCESS_KEY_ID"]
    assert store["RS_S3_SECRET_ACCESS_KEY"] == worker["AWS_SECRET_ACCESS_KEY"]
    assert endpoint(resolved(worker["S3_ENDPOINT_URL"])) == ("seaweedfs", 8333)


def test_mounted_scripts_exist() -> None:
    for name, service in services().items():
        mounts: dict[str, Path] = {}
        for volume in service.get("volumes", []):
            host, _, rest = str(volume).partition(":")
            if host.startswith("./"):
                mounts[rest.split(":")[0]] = ROOT / host
        for arg in [*service.get("entrypoint", []), *service.get("command", [])]:
            for target, directory in mounts.items():
                if str(arg).startswith(target + "/"):
                    path = directory / str(arg)[len(target) + 1 :]
                    assert path.is_file(), f"{name} runs {arg}, but {path} does not exist"
        for directory in mounts.values():
            assert directory.exists(), f"{name} mounts {directory}, which does not exist"


def dockerfile_env() -> dict[str, str]:
    """`ENV KEY=VALUE ...` of the Dockerfile's last stage (the image that runs)."""
    last_stage = re.split(r"^FROM\s", DOCKERFILE.read_text(), flags=re.MULTILINE)[-1]
    text = last_stage.replace("\\\n", " ")
    values: dict[str, str] = {}
    for line in re.findall(r"^ENV\s+(.+)$", text, re.MULTILINE):
        values.update(dict(pair.split("=", 1) for pair in line.split()))
    return values


def test_dockerfile_runs_the_cli_as_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.13-slim|^ARG PYTHON_IMAGE=python:3\.13-slim$", text, re.MULTILINE)
    assert 'ENTRYPOINT ["/app/.venv/bin/rs-ondemand"]' in text
    assert 'CMD ["worker"]' in text
    assert "uv sync --frozen --no-dev --extra stack" in text
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_copies_nothing_the_dockerignore_drops() -> None:
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip()}
    assert {".env", ".venv", ".git", ".stack"} <= ignored
    for sources in re.findall(r"^COPY\s+(?!--from)(.+)\s+\S+$", DOCKERFILE.read_text(), re.MULTILINE):
        for source in sources.split():
            assert source not in ignored, f"Dockerfile copies {source}, which .dockerignore excludes"
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"


def compose_command() -> list[str] | None:
    """`docker compose` (v2) or `docker-compose` (v1), whichever is installed; neither needs an engine for config."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def compose_config(env_file: Path, *options: str) -> str:
    """`docker compose config` of the file with `env_file`, which must succeed.

    Compose lets the shell's variables win over the env file's: it runs with none of this process's settings
    (a test session's stack exports CATALOG_URL, TEMPORAL_ADDRESS, ...), only what Compose itself needs."""
    command = compose_command()
    if command is None:
        pytest.fail("neither `docker compose` nor `docker-compose` is installed (scripts/setup installs it as root)")
    own = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME") or key.startswith("DOCKER_")}
    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", *options],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
        env=own,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_compose_config_validates_with_the_example_env() -> None:
    compose_config(ENV_EXAMPLE, "-q")
