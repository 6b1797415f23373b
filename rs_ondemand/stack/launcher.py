"""`Stack`: bring the embedded local stack up, report on it and take it down (behind `rs-ondemand stack`)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rs_ondemand.stack.envfile import read_env_file, redact, write_env_file
from rs_ondemand.stack.errors import StackError
from rs_ondemand.stack.service_base import Service, StackContext
from rs_ondemand.stack.services import (
    CatalogService,
    PostgresService,
    S3Service,
    SimulatorService,
    TemporalService,
    WorkerService,
)
from rs_ondemand.stack.state import StackState, locked

ENV_FILE = "env"
DEFAULT_STATE_DIR = Path(".stack")
STACK_DIR_VARIABLE = "RS_STACK_DIR"
STOP_TIMEOUT = 15.0
"""Seconds a service gets between SIGTERM and SIGKILL (the Temporal dev server needs about 3)."""

# Start order. PostgreSQL's start blocks (initdb, migrations) while the first three come up; the worker
# comes last because it connects to everything else when it starts.
SERVICE_CLASSES: dict[str, type[Service]] = {
    service.name: service
    for service in (
        TemporalService,
        S3Service,
        SimulatorService,
        PostgresService,
        CatalogService,
        WorkerService,
    )
}
SERVICE_NAMES = tuple(SERVICE_CLASSES)


def default_state_dir() -> Path:
    """`$RS_STACK_DIR`, else `./.stack`."""
    return Path(os.environ.get(STACK_DIR_VARIABLE) or DEFAULT_STATE_DIR)


def _to_stderr(message: str) -> None:
    # A closed stderr (`... | head`) must never interrupt a start or, worse, the clean-up after a failure.
    with contextlib.suppress(OSError, ValueError):
        print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ServiceInfo:
    """One service after `up`."""

    name: str
    url: str
    pid: int | None
    started: bool
    """True when this `up` started it, False when it was already running."""


@dataclass(frozen=True)
class StackInfo:
    """What `up` brought up: the endpoints and the env file's variables (secrets included)."""

    state_dir: Path
    env_file: Path
    env: dict[str, str]
    services: dict[str, ServiceInfo]
    seconds: float
    """Time `up` took."""

    @property
    def temporal_address(self) -> str:
        return self.env["TEMPORAL_ADDRESS"]

    @property
    def temporal_ui_url(self) -> str:
        return self.env["TEMPORAL_UI_URL"]

    @property
    def s3_endpoint_url(self) -> str:
        return self.env["S3_ENDPOINT_URL"]

    @property
    def catalog_url(self) -> str:
        return self.env["CATALOG_URL"]

    @property
    def simulator_url(self) -> str | None:
        return self.env.get("SIMULATOR_URL")


class Stack:
    """The embedded local stack kept in `state_dir`.

    Args:
        state_dir: Holds `env`, `state.json`, `logs/`, the Temporal db and (usually) the PostgreSQL cluster.
        with_worker: Also run `python -m rs_ondemand.worker` (tests run their own in-process workers).
        with_simulator: Also run the station simulator.
        prefer_default_ports: Use the well-known ports (7233, 8233, 9000, 8082, 8090, ...) when free;
            otherwise, and always when False, free ports. Ports recorded by an earlier `up` win.
        notify: Receives progress and warnings (default: stderr).
    """

    def __init__(
        self,
        state_dir: Path | str | None = None,
        *,
        with_worker: bool = True,
        with_simulator: bool = True,
        prefer_default_ports: bool = True,
        notify: Callable[[str], None] = _to_stderr,
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.state_dir = self.state_dir.absolute()
        self.with_worker = with_worker
        self.with_simulator = with_simulator
        self.prefer_default_ports = prefer_default_ports
        self.notify = notify
        # Kept across calls so processes started by this object are reaped by it.
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def env_file(self) -> Path:
        return self.state_dir / ENV_FILE

    def _context(self, state: StackState) -> StackContext:
        return StackContext(
            state_dir=self.state_dir,
            state=state,
            prefer_default_ports=self.prefer_default_ports,
            notify=self.notify,
            children=self._children,
        )

    def _services(self, ctx: StackContext, names: list[str]) -> list[Service]:
        return [SERVICE_CLASSES[name](ctx) for name in SERVICE_NAMES if name in names]

    def _selected(self) -> list[str]:
        skipped = {"worker"} if not self.with_worker else set()
        skipped |= {"simulator"} if not self.with_simulator else set()
        return [name for name in SERVICE_NAMES if name not in skipped]

    def up(self) -> StackInfo:
        """Start what is not running, wait until every service is healthy, write the env file.

        Services already running (started by an earlier `up`) are kept. If a service fails, the ones this
        call started are stopped again and StackError says which failed, quoting its log.
        """
        began = time.monotonic()
        with locked(self.state_dir):
            state = StackState.load(self.state_dir)
            ctx = self._context(state)
            state.services = self._selected()
            services = self._services(ctx, state.services)
            running = {service.name for service in services if service.running()}
            code = code_fingerprint()
            if "worker" in running and state.worker_code != code:
                # A worker keeps the code it was started with: after a pull or an edit it must be restarted.
                self.notify("the code changed since the worker started: restarting it")
                _stop([s for s in services if s.name == "worker"], self.notify)
                running.discard("worker")
            if "worker" not in running:
                state.worker_code = code
            for service in services:
                if service.name not in running:
                    ctx.allocate(service.ports)
            ctx.env.update(_exports(services))  # also creates the credentials, before anyone needs them
            state.save(self.state_dir)
            self._start_missing(services, running, state)
            write_env_file(
                self.env_file,
                ctx.env,
                header=f"rs-ondemand embedded stack ({self.state_dir}); load with: set -a; . {self.env_file}",
            )
            state.save(self.state_dir)
            infos = {
                service.name: ServiceInfo(
                    name=service.name,
                    url=service.url(),
                    pid=service.pid(),
                    started=service.name not in running,
                )
                for service in services
            }
        return StackInfo(
            state_dir=self.state_dir,
            env_file=self.env_file,
            env=dict(ctx.env),
            services=infos,
            seconds=time.monotonic() - began,
        )

    def _start_missing(self, services: list[Service], running: set[str], state: StackState) -> None:
        """Start each service not `running` once its dependencies are ready, then wait for all of them.

        On any failure (or Ctrl-C) the services started here are stopped again before the error propagates.
        """
        by_name = {service.name: service for service in services}
        started: list[Service] = []
        ready: set[str] = set()

        def make_ready(service: Service) -> None:
            if service.name not in ready:
                service.wait_ready()
                service.after_ready()
                ready.add(service.name)

        try:
            for service in services:
                for dependency in service.depends_on:
                    if dependency in by_name:
                        make_ready(by_name[dependency])
                if service.name in running:
                    continue
                self.notify(f"starting {service.name}")
                started.append(service)
                service.start()
                state.save(self.state_dir)  # recorded at once: a crash of the launcher must not orphan it
            for service in services:
                make_ready(service)
        except BaseException:
            _stop(reversed(started), self.notify)
            state.save(self.state_dir)
            raise

    def status(self) -> dict[str, Any]:
        """`{"services": {name: {"url", "healthy", "pid"}}, "env": {...secrets masked...}}`.

        Raises:
            StackError: when no stack was ever brought up in the state dir.
        """
        state = StackState.load(self.state_dir)
        if not state.services:
            raise StackError(f"no stack in {self.state_dir}: run `rs-ondemand stack up` first")
        services = self._services(self._context(state), state.services)
        report = {}
        for service in services:
            pid = service.pid() if service.has_ports() else None
            report[service.name] = {
                "url": service.url() if service.has_ports() else None,
                "healthy": pid is not None and service.healthy(),
                "pid": pid,
            }
        return {"services": report, "env": redact(read_env_file(self.env_file))}

    def down(self, *, purge: bool = False) -> list[str]:
        """Stop the services this launcher started (nothing else); returns their names.

        Ports, credentials, the Temporal db and the catalog's PostgreSQL data are kept for the next `up`,
        unless `purge`, which deletes all of them (only the logs stay, for post-mortems).
        """
        with locked(self.state_dir):
            state = StackState.load(self.state_dir)
            ctx = self._context(state)
            known = list(dict.fromkeys([*state.services, *state.processes]))
            services = [s for s in self._services(ctx, known) if s.name in state.processes or s.running()]
            stopped = [service.name for service in services if service.running()]
            _stop(reversed(services), self.notify)
            state.save(self.state_dir)
            pg_dir = Path(state.pg_dir) if state.pg_dir else None
        if purge:
            if pg_dir is not None:
                shutil.rmtree(pg_dir, ignore_errors=True)
            for entry in self.state_dir.iterdir():
                if entry.is_dir() and entry.name != "logs":
                    shutil.rmtree(entry)
                elif not entry.is_dir():
                    entry.unlink()
        return stopped


def code_fingerprint() -> str:
    """A digest of the package's Python sources (paths, sizes, modification times): cheap, and changed by any edit."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(package)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _exports(services: list[Service]) -> dict[str, str]:
    env: dict[str, str] = {}
    for service in services:
        env |= service.exports()
    return env


def _stop(services: Iterable[Service], notify: Callable[[str], None]) -> None:
    """Stop the worker first, then all other services at once."""
    ordered = list(services)
    # The worker goes first so it never sees its servers vanish mid-task.
    rest = sorted((s for s in ordered if s.name != "worker"), key=lambda s: s.stop_last)
    waves = [[s for s in ordered if s.name == "worker"], rest]
    for wave in waves:
        for service in wave:
            notify(f"stopping {service.name}")
            service.request_stop()
        for service in wave:
            service.finish_stop(STOP_TIMEOUT)
