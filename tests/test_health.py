"""The worker's health endpoint: alive once started, ready only when connected and polling, down on a failure."""

from __future__ import annotations

import httpx

from rs_ondemand.health import Health, serving


def answer(port: int, path: str) -> tuple[int, dict[str, object]]:
    response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
    return response.status_code, response.json() if response.status_code != 404 else {}


def test_probes_follow_the_workers_state() -> None:
    health = Health(role="processing", task_queues=["q-processor"])
    with serving(health, "127.0.0.1", 0) as port:
        assert port
        assert answer(port, "/livez")[0] == 503  # not started yet
        health.started = True
        assert answer(port, "/livez")[0] == 200 and answer(port, "/readyz")[0] == 503
        health.connected = True
        assert answer(port, "/readyz")[0] == 503  # connected, pollers not running yet
        health.polling = True
        code, body = answer(port, "/readyz")
        assert code == 200 and answer(port, "/healthz")[0] == 200
        assert body == {
            "role": "processing",
            "started": True,
            "connected": True,
            "polling": True,
            "failed": False,
            "task_queues": ["q-processor"],
        }
        health.connected = False  # Temporal unreachable: not ready, still alive
        assert answer(port, "/readyz")[0] == 503 and answer(port, "/livez")[0] == 200
        health.connected, health.failed = True, True  # a poller died: restart the process
        assert answer(port, "/livez")[0] == 503 and answer(port, "/readyz")[0] == 503
        assert answer(port, "/metrics")[0] == 404


def test_no_port_no_endpoint() -> None:
    with serving(Health(role="all"), "127.0.0.1", None) as port:
        assert port is None
