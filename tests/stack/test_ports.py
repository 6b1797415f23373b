"""Port choice: recorded port first, then the default, then a free one."""

from __future__ import annotations

import socket
from pathlib import Path

from rs_ondemand.stack.ports import HOST, choose_port, free_port, is_listening, is_port_free


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind((HOST, 0))
    sock.listen()
    return sock


def test_choose_port_prefers_recorded_then_default() -> None:
    """A free recorded port wins over the default; a free default wins over a random port."""
    recorded, default = free_port(), free_port()
    assert choose_port(recorded=recorded, default=default, prefer_default=True) == recorded
    assert choose_port(recorded=None, default=default, prefer_default=True) == default


def test_choose_port_skips_busy_and_taken_ports() -> None:
    """A busy recorded/default port, or one given to another service, is replaced by a free one."""
    with _listening_socket() as busy:
        port = busy.getsockname()[1]
        assert not is_port_free(port)
        assert is_listening(port)
        chosen = choose_port(recorded=port, default=port, prefer_default=True)
        assert chosen != port
        assert is_port_free(chosen)
    default = free_port()
    assert choose_port(recorded=None, default=default, prefer_default=True, taken=[default]) != default


def test_choose_port_ignores_default_when_not_preferred() -> None:
    """Tests ask for free ports only: the well-known default is never used then."""
    default = free_port()
    assert choose_port(recorded=None, default=default, prefer_default=False, taken=[default]) != default


def test_free_ports_come_from_below_the_ephemeral_range() -> None:
    """The kernel hands ephemeral ports to outgoing connections; a picked port must not be one of them."""
    start = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(20000 <= port < start for port in ports)
    assert all(is_port_free(port) for port in ports)
    assert free_port(avoid=ports) not in ports
