"""What every service of the embedded stack is: the context they share, the `Service` contract the launcher drives,
and `ProcessService`, a program in its own process group recorded in state.json."""

from __future__ import annotations

import contextlib
import os
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from rs_ondemand.stack import procs
from rs_ondemand.stack.errors import StackError
from rs_ondemand.stack.health import wait_until
from rs_ondemand.stack.ports import HOST, choose_port
from rs_ondemand.stack.state import StackState


@dataclass
class StackContext:
    """What every service needs: where the stack lives, its remembered state and how to talk to the user."""

    state_dir: Path
    state: StackState
    prefer_default_ports: bool
    notify: Callable[[str], None]
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    """Processes started by this Python process, kept so they can be reaped (no zombies, no warnings)."""
    env: dict[str, str] = field(default_factory=dict)
    """The env file's variables, known once `up` has allocated the ports."""

    def log_path(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def allocate(self, defaults: dict[str, int | None]) -> None:
        """Give each port key a port (recorded, then default, then free) and remember it."""
        ports = self.state.ports
        for key, default in defaults.items():
            others = [port for name, port in ports.items() if name != key]
            recorded = ports.get(key)
            ports[key] = choose_port(
                recorded=recorded,
                default=default,
                prefer_default=self.prefer_default_ports,
                taken=others,
            )
            if recorded is not None and ports[key] != recorded:
                self.notify(f"port {recorded} ({key}) is taken by another program: using {ports[key]} instead")

    def port(self, key: str) -> int:
        try:
            return self.state.ports[key]
        except KeyError:
            raise StackError(f"no port recorded for '{key}': run `rs-ondemand stack up`") from None

    def http_url(self, key: str) -> str:
        return f"http://{HOST}:{self.port(key)}"


class Service(ABC):
    """One part of the stack: started by `up` unless it runs, probed by `status`, stopped by `down`."""

    name: ClassVar[str]
    ports: ClassVar[dict[str, int | None]] = {}
    """Port keys of this service with their default port (None: no default, always a free port)."""
    depends_on: ClassVar[tuple[str, ...]] = ()
    """Services that must be healthy before this one starts."""
    stop_last: ClassVar[bool] = False
    """Whether `request_stop` blocks, so that the others are signalled first and stop meanwhile."""

    def __init__(self, ctx: StackContext) -> None:
        self.ctx = ctx

    @property
    def log_path(self) -> Path:
        return self.ctx.log_path(self.name)

    def has_ports(self) -> bool:
        return all(key in self.ctx.state.ports for key in self.ports)

    @abstractmethod
    def url(self) -> str:
        """The address clients use (a URL, or host:port for gRPC)."""

    @abstractmethod
    def pid(self) -> int | None:
        """The pid of the running service, None when it is not running."""

    def running(self) -> bool:
        return self.pid() is not None

    @abstractmethod
    def healthy(self) -> bool:
        """One quick probe."""

    @abstractmethod
    def start(self) -> None:
        """Start the service; may return before it is ready (see `wait_ready`)."""

    @abstractmethod
    def wait_ready(self) -> None:
        """Block until the service answers, or raise StackError quoting its log."""

    def after_ready(self) -> None:  # noqa: B027 - optional hook, most services need no set-up
        """Idempotent set-up once the service answers (also run when it was already running)."""

    @abstractmethod
    def request_stop(self) -> None:
        """Ask the service to stop; may return before it has (see `finish_stop`)."""

    def finish_stop(self, timeout: float) -> None:  # noqa: B027 - optional, for asynchronous stops
        """Wait until the service has stopped, forcing it after `timeout` seconds."""

    def exports(self) -> dict[str, str]:
        """The env file entries this service provides."""
        return {}


class ProcessService(Service):
    """A long-running program started in its own process group and recorded in state.json."""

    ready_timeout: ClassVar[float] = 60.0

    @abstractmethod
    def command(self) -> list[str]: ...

    def environment(self) -> dict[str, str]:
        """Variables added to the launcher's environment."""
        return {}

    def cwd(self) -> Path:
        return self.ctx.state_dir

    @property
    def record(self) -> procs.ProcessRecord | None:
        return self.ctx.state.processes.get(self.name)

    def pid(self) -> int | None:
        record = self.record
        return record.pid if record is not None and procs.is_alive(record) else None

    def start(self) -> None:
        # Python services buffer stdout in a file; unbuffered, their log (and the worker's ready marker)
        # shows up at once.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.environment()}
        if (previous := self.ctx.children.pop(self.name, None)) is not None:
            previous.poll()  # a crashed earlier run of ours: collect it before forgetting its handle
        child, record = procs.launch(self.command(), env=env, cwd=self.cwd(), log_path=self.log_path)
        self.ctx.children[self.name] = child
        self.ctx.state.processes[self.name] = record

    def wait_ready(self) -> None:
        wait_until(
            self.name,
            self.healthy,
            timeout=self.ready_timeout,
            log_path=self.log_path,
            alive=self.running,
        )

    def request_stop(self) -> None:
        if self.record is not None:
            procs.terminate([self.record])

    def finish_stop(self, timeout: float) -> None:
        record = self.ctx.state.processes.pop(self.name, None)
        if record is not None and procs.wait_gone([record], timeout=timeout):
            self.ctx.notify(f"{self.name} did not stop within {timeout:.0f} s: killed")
        if (child := self.ctx.children.pop(self.name, None)) is not None:
            # Sets the Popen's return code, even if wait_gone already collected the exit status.
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=1)
