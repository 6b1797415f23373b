"""Reading the deployment files (docker-compose.yml, .env.example, the Dockerfile) as Compose and the image
would: services, environments resolved with the example values, ports, commands; `docker compose config`. For the
static deployment tests (no engine, no stack)."""

from __future__ import annotations

import functools
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

from rs_ondemand.config import Settings

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
DASK = "/app/.venv-eopf/bin/dask"
SCHEDULER, DASK_WORKER = "dask-scheduler", "dask-worker"
COLLECTOR, JAEGER = "otel-collector", "jaeger"


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


def scheduler_address(name: str) -> tuple[str, int]:
    """Where a `dask scheduler` service listens: its service name and `--port` (8786 unless given)."""
    args = command_of(name)
    assert services()[name].get("entrypoint") == [DASK] and args[0] == "scheduler", f"{name} is no dask scheduler"
    port = option(args, "--port") if any(arg.startswith("--port") for arg in args) else "8786"
    return name, int(port)


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


def dockerfile_env() -> dict[str, str]:
    """`ENV KEY=VALUE ...` of the Dockerfile's last stage (the image that runs)."""
    last_stage = re.split(r"^FROM\s", DOCKERFILE.read_text(), flags=re.MULTILINE)[-1]
    text = last_stage.replace("\\\n", " ")
    values: dict[str, str] = {}
    for line in re.findall(r"^ENV\s+(.+)$", text, re.MULTILINE):
        values.update(dict(pair.split("=", 1) for pair in line.split()))
    return values


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
