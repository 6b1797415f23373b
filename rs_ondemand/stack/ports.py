"""Loopback port checks and allocation: defaults when free, otherwise a free port from the kernel."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterable

HOST = "127.0.0.1"


def is_port_free(port: int, host: str = HOST) -> bool:
    """Whether nothing listens on `host:port` and we could bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Without SO_REUSEADDR a port in TIME_WAIT after a restart looks taken, though servers can bind it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _ephemeral_start() -> int:
    """First port of the kernel's ephemeral range (Linux default 32768)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
            return int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = HOST, *, avoid: Iterable[int] = ()) -> int:
    """A free port below the kernel's ephemeral range, not in `avoid`.

    `bind(0)` would hand out an ephemeral port, which any outgoing connection may take as its source port
    between the moment we pick it and the moment the service binds it (seen: the Temporal dev server, which binds
    four ports, failing at start-up). Ports below that range are never assigned by the kernel on its own.
    """
    avoided = set(avoid)
    low, high = 20000, min(_ephemeral_start(), 65536) - 1
    if high - low < 1000:  # an unusual ephemeral range: fall back to the kernel's choice
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            if port not in avoided:
                return port
    picker = random.SystemRandom()
    while True:
        port = picker.randint(low, high)
        if port not in avoided and is_port_free(port, host):
            return port


def is_listening(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """Whether a TCP connection to `host:port` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def choose_port(*, recorded: int | None, default: int | None, prefer_default: bool, taken: Iterable[int] = ()) -> int:
    """The port a service should listen on.

    A port recorded by an earlier `up` wins while it is free, so the env file stays true across restarts;
    then the default (if preferred and free); then any free port. `taken` are ports already given to other
    services of this stack.
    """
    reserved = set(taken)
    for candidate in (recorded, default if prefer_default else None):
        if candidate and candidate not in reserved and is_port_free(candidate):
            return candidate
    return free_port(avoid=reserved)
