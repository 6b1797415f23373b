"""Fixtures of the deployment tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from rs_ondemand.config import Settings
from tests.support.compose import WORKER, environment, resolved, settings_env_names


@pytest.fixture
def worker_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """The settings a worker container loads: its compose environment with the .env.example values, nothing else."""
    for name in [*settings_env_names(), "DASK_GATEWAY_PASSWORD", "JUPYTERHUB_API_TOKEN"]:
        monkeypatch.delenv(name, raising=False)
    for key, value in environment(WORKER).items():
        monkeypatch.setenv(key, resolved(value))
    return Settings.load(env_file=tmp_path / "no-env-file")
