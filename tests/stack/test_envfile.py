"""The env file: KEY=VALUE lines, mode 0600, secrets masked for display."""

from __future__ import annotations

import stat
from pathlib import Path

from rs_ondemand.stack.envfile import MASK, is_secret, read_env_file, redact, write_env_file


def test_env_file_round_trip_is_private(tmp_path: Path) -> None:
    """What is written is read back unchanged, comments are skipped and only the owner can read it."""
    path = tmp_path / "env"
    env = {"TEMPORAL_ADDRESS": "127.0.0.1:7233", "AWS_SECRET_ACCESS_KEY": "s3cr-t_x"}
    write_env_file(path, env, header="a comment")
    assert read_env_file(path) == env
    assert path.read_text().startswith("# a comment\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_redact_masks_only_secrets() -> None:
    """Secrets and passwords are masked; token URLs and client ids are not secrets."""
    env = {
        "AWS_SECRET_ACCESS_KEY": "x",
        "CADIP_CLIENT_SECRET": "x",
        "PRIP_PASSWORD": "x",
        "CADIP_TOKEN_URL": "http://h/cadip/oauth2/token",
        "CADIP_CLIENT_ID": "id",
    }
    shown = redact(env)
    assert shown["AWS_SECRET_ACCESS_KEY"] == shown["CADIP_CLIENT_SECRET"] == shown["PRIP_PASSWORD"] == MASK
    assert shown["CADIP_TOKEN_URL"] == env["CADIP_TOKEN_URL"]
    assert shown["CADIP_CLIENT_ID"] == "id"
    assert not is_secret("AWS_ACCESS_KEY_ID")


def test_read_env_file_missing_is_empty(tmp_path: Path) -> None:
    assert read_env_file(tmp_path / "nope") == {}
