"""Running a real `python -m rs_simulator` for the tests: free loopback port, own credentials, own log."""

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from rs_ondemand.stack.ports import free_port

STARTUP_TIMEOUT = 30.0
STATIONS = ("cadip", "auxip", "prip")


@dataclass
class RunningSimulator:
    """A simulator process, its URL and the credentials it was started with."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    credentials: dict[str, str]
    settings: dict[str, str] = field(default_factory=dict)

    def token_response(self, station: str) -> dict[str, Any]:
        form = {"grant_type": "password", **self.credentials}
        response = httpx.post(f"{self.url}/{station}/oauth2/token", data=form)
        response.raise_for_status()
        return dict(response.json())

    def auth(self, station: str) -> dict[str, str]:
        """Headers with a fresh bearer token of `station`."""
        return {"Authorization": f"Bearer {self.token_response(station)['access_token']}"}

    def rss_bytes(self) -> int:
        """Resident memory of the simulator process (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")


@contextmanager
def run_simulator(log_dir: Path, **settings: Any) -> Iterator[RunningSimulator]:
    """Start `python -m rs_simulator` with `SIMULATOR_<KEY>` settings; stop it by its own pid on exit."""
    credentials = {
        "client_id": f"client-{secrets.token_hex(4)}",
        "client_secret": secrets.token_hex(8),
        "username": f"user-{secrets.token_hex(3)}",
        "password": secrets.token_hex(8),
    }
    values = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (credentials | settings).items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMULATOR_")}
    env |= {f"SIMULATOR_{key.upper()}": value for key, value in values.items()}
    port = free_port()
    log = log_dir / f"simulator-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "rs_simulator", "--host", "127.0.0.1", "--port", str(port), "--log-level", "info"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"simulator exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"simulator not healthy after {STARTUP_TIMEOUT} s:\n{log.read_text()}")
            time.sleep(0.1)
        yield RunningSimulator(url, process, log, credentials, values)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
