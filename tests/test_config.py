"""Settings come from the environment over the env file, each station under its own prefix."""

from pathlib import Path

import pytest

from rs_ondemand.config import Settings

_PREFIXES = ("CADIP_", "AUXIP_", "PRIP_", "RS_", "TEMPORAL_", "AWS_", "S3_", "CATALOG_")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack fixture exports its variables for the session: these tests must not see them."""
    import os

    for name in list(os.environ):
        if name.startswith(_PREFIXES):
            monkeypatch.delenv(name)


def test_each_station_reads_its_own_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / "env"
    env_file.write_text(
        "CADIP_URL=http://sim/cadip/stac\nCADIP_PASSWORD=cadip-secret\nPRIP_USERNAME=prip-user\n"
        "RS_TASK_QUEUE=from-file\nTEMPORAL_ADDRESS=10.0.0.1:7233\n"
    )
    monkeypatch.setenv("RS_TASK_QUEUE", "from-env")
    settings = Settings.load(env_file)
    assert settings.cadip.url == "http://sim/cadip/stac"
    assert settings.cadip.password is not None and settings.cadip.password.get_secret_value() == "cadip-secret"
    assert settings.prip.username == "prip-user" and settings.cadip.username is None
    assert settings.worker.task_queue == "from-env"  # the environment wins over the file
    assert settings.temporal.address == "10.0.0.1:7233"


def test_secrets_are_masked_in_representations(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("AWS_SECRET_ACCESS_KEY=s3-secret-value\nAUXIP_CLIENT_SECRET=aux-secret-value\n")
    text = repr(Settings.load(env_file)) + Settings.load(env_file).model_dump_json()
    assert "s3-secret-value" not in text and "aux-secret-value" not in text
