"""docs/deployment.md follows the code and the deployment files: generated tables, variables, services, ports."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import yaml

from rs_ondemand.config import StationSettings
from tests.support.compose import (
    PENDING_SETTINGS,
    WORKER,
)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deployment.md"
SCRIPT = ROOT / "deploy" / "settings_table.py"


def settings_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("settings_table", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def doc() -> str:
    return DOC.read_text()


def services() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def test_settings_tables_are_up_to_date() -> None:
    script = settings_table()
    assert script.replace_between_markers(doc(), script.tables()) == doc(), (
        "docs/deployment.md is out of date: run .venv/bin/python deploy/settings_table.py --write docs/deployment.md"
    )


def test_every_field_has_a_description() -> None:
    tables = settings_table().tables()
    empty = [line for line in tables.splitlines() if line.startswith("| `") and line.rstrip().endswith("|  |")]
    assert not empty, f"give these fields a docstring in rs_ondemand/config.py: {empty}"


def test_every_setting_has_a_description() -> None:
    """The doc's tables come from config.py's docstrings: a field without one would be an empty row."""
    script = settings_table()
    for name, part in script.config.Settings.model_fields.items():
        undocumented = [field for field, doc in script.field_docs(part.annotation).items() if not doc]
        assert not undocumented, f"{name}: fields without a docstring in rs_ondemand/config.py: {undocumented}"


def documented_as(key: str) -> str:
    """How the doc names a variable: a station's under `<STATION>_`, any other as it is."""
    prefixes = [station.model_config.get("env_prefix", "") for station in StationSettings.__subclasses__()]
    return next((f"<STATION>_{key[len(p) :]}" for p in prefixes if key.startswith(p)), key)


def test_worker_variables_of_the_compose_file_are_in_the_tables() -> None:
    tables = settings_table().tables()
    for key in services()[WORKER]["environment"]:
        if key not in PENDING_SETTINGS:
            assert f"`{documented_as(key)}`" in tables, f"{key} is not in the generated tables"


def test_every_env_example_variable_is_described() -> None:
    names = [line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line]
    names = [name for name in names if not name.startswith("#")]
    missing = [name for name in names if f"`{documented_as(name)}`" not in doc() and f"`{name}`" not in doc()]
    assert not missing, f"docs/deployment.md does not describe {missing}"


def test_service_table_lists_every_service_and_its_image() -> None:
    rows = {m[1]: m[0] for m in re.finditer(r"^\| `([\w-]+)`(?: \u00d7\d+)? \|.*$", doc(), re.MULTILINE)}
    for name, service in services().items():
        assert name in rows, f"docs/deployment.md's service table lacks {name}"
        image = service["image"]
        expected = "rs-ondemand" if image.startswith("${") else f"`{image}`"
        assert expected in rows[name], f"{name}: the doc does not say it runs {expected}"


def published(name: str, target: int) -> int:
    for spec in services()[name].get("ports", []):
        host_port, _, container_port = str(spec).rpartition(":")
        if int(container_port) == target:
            return int(host_port.rsplit(":", 1)[-1])
    raise AssertionError(f"{name} does not publish {target}")


def test_doc_gives_the_published_ui_ports() -> None:
    """The UIs are published by the gateway, on its ports."""
    for target in (16686, 8080, 8787, 8082):
        assert f"http://127.0.0.1:{published('gateway', target)}" in doc(), f"the gateway's {target}"
