"""Static checks of the deployment files (docker-compose.yml, .env.example, Dockerfile): no engine, no stack."""

from __future__ import annotations

import functools
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

from rs_ondemand.config import Settings, StationSettings
from rs_ondemand.stack.search_attributes import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

WORKER = "worker"
# Printed as links for the operators' browsers, so not a compose service name.
BROWSER_FACING = {"TEMPORAL_UI_URL"}
SECRET_KEY = re.compile(r"PASSWORD|SECRET|KEY|PWD")
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
            values[key.strip()] = value.strip()
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
    return {
        key: value
        for key, value in environment(WORKER).items()
        if key.endswith(("_URL", "_ADDRESS")) and key not in BROWSER_FACING
    }


# --- (a) the worker's variables are the ones the settings read ---


def test_worker_sets_only_names_the_settings_read() -> None:
    accepted = settings_env_names()
    unknown = sorted(set(environment(WORKER)) - set(accepted))
    assert not unknown, f"worker variables no settings class reads: {unknown}"


def test_worker_sets_every_setting_without_a_container_default() -> None:
    needed = {name for name, field in settings_env_names().items() if needs_setting(field)}
    # The rule above must at least find the endpoints interface.md names.
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
        host, port = endpoint(value)
        assert host in services(), f"{key}={value}: {host} is not a compose service"
        assert port in listening_ports(host), f"{key}={value}: {host} listens on {sorted(listening_ports(host))}"


@pytest.mark.parametrize("station", StationSettings.__subclasses__(), ids=lambda cls: cls.kind)
def test_station_urls_follow_the_simulator_layout(station: type[StationSettings]) -> None:
    prefix = station.model_config.get("env_prefix", "")
    env = environment(WORKER)
    paths = {suffix: urlsplit(env[f"{prefix}{suffix}"]).path for suffix in ("URL", "ODATA_URL", "TOKEN_URL")}
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
            if SECRET_KEY.search(key):
                assert INTERPOLATED_ONLY.fullmatch(str(value)), f"{name}: {key} must be ${{VAR}} or ${{VAR:?...}}"


def test_env_example_secrets_are_placeholders() -> None:
    secret_vars = {
        var
        for name in services()
        for key, value in environment(name).items()
        if SECRET_VALUE.search(key)
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


# --- consistency of the rest of the stack ---


def test_compose_file_uses_the_compose_specification() -> None:
    assert "version" not in compose()
    assert services()[WORKER]["deploy"]["replicas"] == 2
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


def test_minio_init_creates_the_workers_buckets_and_account() -> None:
    init, worker = environment("minio-init"), environment(WORKER)
    assert init["RS_BUCKET"] == worker["RS_BUCKET"]
    assert init["RS_WORK_BUCKET"] == worker["RS_WORK_BUCKET"]
    assert init["RS_S3_ACCESS_KEY_ID"] == worker["AWS_ACCESS_KEY_ID"]
    assert init["RS_S3_SECRET_ACCESS_KEY"] == worker["AWS_SECRET_ACCESS_KEY"]


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


def test_compose_config_validates_with_the_example_env() -> None:
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "--env-file", str(ENV_EXAMPLE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
