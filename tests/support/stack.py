"""Driving the test stack (not fixtures): the `rs-ondemand` CLI, the simulator's test controls and stacks of a
test's own."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from rs_ondemand.stack import Stack
from rs_ondemand.stack.watchdog import guarded


async def run_cli(*args: str, **env: str) -> tuple[int, str, str]:
    """Run `rs-ondemand ARGS` as operators do (without blocking the loop the in-process worker runs on)."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("rs-ondemand")),
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()


class Simulator:
    """The station simulator's test controls (docs/interface.md#simulator: /_faults, /_stats)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def faults(self, **per_station: dict[str, Any]) -> None:
        self.http.put("/_faults", json={"stations": per_station}).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/_faults").raise_for_status()

    def stats(self, station: str) -> dict[str, Any]:
        response = self.http.get("/_stats")
        response.raise_for_status()
        return response.json()[station]

    def close(self) -> None:
        self.http.close()

    def add_products(self, station: str, product_type: str, count: int, **spec: Any) -> dict[str, Any]:
        """Generated products (deterministic from the spec); see the simulator's POST /_catalogue/products."""
        body = {"station": station, "product_type": product_type, "count": count, **spec}
        response = self.http.post("/_catalogue/products", json=body)
        response.raise_for_status()
        return dict(response.json())

    def add_session(self, **spec: Any) -> dict[str, Any]:
        """A generated CADIP session; see the simulator's POST /_catalogue/sessions."""
        response = self.http.post("/_catalogue/sessions", json=spec)
        response.raise_for_status()
        return dict(response.json())

    def reset_stats(self) -> None:
        self.http.delete("/_stats").raise_for_status()


def stack_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`rs-ondemand stack ARGS`, blocking (for the tests that drive a stack, not a worker)."""
    command = [str(Path(sys.executable).with_name("rs-ondemand")), "stack", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@contextmanager
def stack_of_its_own(state_dir: Path, *, with_simulator: bool) -> Iterator[Stack]:
    """A stack of the tests' own (free ports, no worker), not started yet (`up`): the session's, or a second one
    for tests that stop its services, so that the session stack is never disturbed. Taken down and purged
    afterwards (the PostgreSQL cluster may live outside the temporary dir, in /var/tmp; logs stay for
    post-mortems), or by the guard's watchdog if pytest is killed first."""
    launcher = Stack(
        state_dir,
        with_worker=False,
        with_simulator=with_simulator,
        prefer_default_ports=False,
        notify=lambda message: None,
    )
    with guarded(launcher, purge=True):
        yield launcher
