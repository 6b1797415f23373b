"""Health probes (HTTP on loopback) and the wait loop that turns a timeout into a readable error."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from rs_ondemand.stack.errors import StackError


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether GET `url` answers 200."""
    try:
        # trust_env=False: a proxy from the environment must never see loopback probes.
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file ('' when it does not exist)."""
    try:
        data = path.read_bytes()[-64 * 1024 :]
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def wait_until(
    name: str,
    probe: Callable[[], bool],
    *,
    timeout: float,
    log_path: Path | None,
    alive: Callable[[], bool] = lambda: True,
    interval: float = 0.15,
) -> None:
    """Poll `probe` until it holds.

    Raises:
        StackError: quoting the end of `log_path` when the process died (`alive` false) or `timeout` passed.
    """
    deadline = time.monotonic() + timeout
    while True:
        if probe():
            return
        if not alive():
            # One more probe: the process may have handed over to a daemon and exited on purpose.
            if probe():
                return
            raise _failure(f"{name} exited during start-up", log_path)
        if time.monotonic() > deadline:
            raise _failure(f"{name} did not become healthy within {timeout:.0f} s", log_path)
        time.sleep(interval)


def _failure(summary: str, log_path: Path | None) -> StackError:
    return StackError(summary, log_path=log_path, log_tail=tail(log_path) if log_path else "")
