"""Read and write the `KEY=VALUE` env file (`<state_dir>/env`) and mask its secrets for display."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

_SECRET_SUFFIXES = ("SECRET", "SECRET_ACCESS_KEY", "PASSWORD")
MASK = "***"


def is_secret(key: str) -> bool:
    """Whether the variable holds a credential that must not be printed."""
    return key.upper().endswith(_SECRET_SUFFIXES)


def redact(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of `env` with secret values replaced by `***`."""
    return {key: MASK if is_secret(key) else value for key, value in env.items()}


def write_env_file(path: Path, env: Mapping[str, str], header: str = "") -> None:
    """Write `env` as `KEY=VALUE` lines with mode 0600, atomically (readers never see half a file)."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{key}={value}" for key, value in env.items()]
    write_private(path, "\n".join(lines) + "\n")


def read_env_file(path: Path) -> dict[str, str]:
    """Parse `KEY=VALUE` lines, skipping blanks and `#` comments; {} when the file does not exist."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    env = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        env[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return env


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable by its owner only (it holds credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)  # the file may have existed with a wider mode
    os.replace(tmp, path)
