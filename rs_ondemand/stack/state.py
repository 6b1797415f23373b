"""The launcher's memory of a stack (`<state_dir>/state.json`): ports, credentials and started processes."""

from __future__ import annotations

import contextlib
import fcntl
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rs_ondemand.stack.envfile import write_private
from rs_ondemand.stack.procs import ProcessRecord

STATE_FILE = "state.json"
_VERSION = 1


@dataclass
class StackState:
    """Everything `up` must reuse and `down` must stop.

    Ports and credentials are kept after `down` so the next `up` writes the same env file.
    """

    ports: dict[str, int] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    services: list[str] = field(default_factory=list)
    """The services the last `up` was asked for, in start order (what `status` reports on)."""
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    """Processes this launcher started and that were not stopped yet, by service name."""
    pg_dir: str | None = None
    """Where the PostgreSQL cluster lives (outside the state dir when the postgres user cannot reach it)."""
    worker_code: str | None = None
    """Fingerprint of the code the running worker was started with (a changed checkout restarts it)."""

    def secret(self, key: str, factory: Callable[[], str] = lambda: secrets.token_urlsafe(24)) -> str:
        """The credential named `key`, created once per stack."""
        if key not in self.secrets:
            self.secrets[key] = factory()
        return self.secrets[key]

    @classmethod
    def load(cls, state_dir: Path) -> StackState:
        path = state_dir / STATE_FILE
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        return cls(
            ports={k: int(v) for k, v in data.get("ports", {}).items()},
            secrets=dict(data.get("secrets", {})),
            services=list(data.get("services", [])),
            processes={k: ProcessRecord.from_json(v) for k, v in data.get("processes", {}).items()},
            pg_dir=data.get("pg_dir"),
            worker_code=data.get("worker_code"),
        )

    def save(self, state_dir: Path) -> None:
        data = {
            "version": _VERSION,
            "ports": self.ports,
            "secrets": self.secrets,
            "services": self.services,
            "processes": {k: v.to_json() for k, v in self.processes.items()},
            "pg_dir": self.pg_dir,
            "worker_code": self.worker_code,
        }
        write_private(state_dir / STATE_FILE, json.dumps(data, indent=2) + "\n")


@contextlib.contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the state dir, so two `up`/`down` calls never interleave."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
