"""The worker's environment in docker-compose.yml: exactly the names the settings read, loading as settings,
endpoints on compose services and their ports, every variable documented in .env.example, no secret value."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from rs_ondemand.config import Settings, StationSettings
from tests.support.compose import (
    COMPOSE_FILE,
    INTERPOLATED_ONLY,
    NOT_SECRET,
    PENDING_SETTINGS,
    SECRET_KEY,
    SECRET_VALUE,
    WORKER,
    endpoint,
    env_example,
    environment,
    interpolated_names,
    listening_ports,
    needs_setting,
    resolved,
    services,
    settings_env_names,
    worker_urls,
)

# --- the worker's variables are the ones the settings read ---


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


# --- the worker reaches compose services on the ports they listen on ---


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


# --- every variable the compose file uses is documented ---


def test_every_interpolated_variable_is_in_env_example() -> None:
    used = interpolated_names(COMPOSE_FILE.read_text())
    assert used, "the compose file should take its settings from the environment"
    missing = sorted(used - set(env_example()))
    assert not missing, f"used in docker-compose.yml but missing from .env.example: {missing}"


def test_env_example_lists_nothing_unused() -> None:
    unused = sorted(set(env_example()) - interpolated_names(COMPOSE_FILE.read_text()))
    assert not unused, f".env.example variables docker-compose.yml never uses: {unused}"


# --- no secret values in the compose file ---


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


def test_worker_environment_loads_as_settings(worker_settings: Settings) -> None:
    assert worker_settings.temporal.address == "temporal:7233"
    assert worker_settings.telemetry.traces_exporter == "otlp"
    assert worker_settings.processor.otlp_endpoint
    assert set(worker_settings.processor.dask_clusters) >= {"local", "dask-l0"}
