"""The worker's health endpoint, for Compose healthchecks and Kubernetes probes.

- `GET /livez`: 200 once the process runs and as long as none of its pollers has stopped on its own (a fatal
  worker error); a liveness probe restarts the process otherwise.
- `GET /readyz`: 200 when, in addition, the client is connected (the last check of the frontend answered) and
  every poller runs; 503 before, and while Temporal is unreachable.
- `GET /healthz`: the same as `/readyz`.

Each answers a JSON object: `started`, `connected`, `polling`, the worker's `role` and its `task_queues`.
The server is the standard library's, in a thread of its own: probes are answered even while the event loop is
busy, and they cannot delay it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Health:
    """What the endpoint reports; the worker sets it as it starts, connects and polls."""

    role: str
    started: bool = False
    connected: bool = False
    polling: bool = False
    failed: bool = False
    """A poller stopped without being asked to: the process is no longer alive."""
    task_queues: list[str] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.started and not self.failed

    @property
    def ready(self) -> bool:
        return self.alive and self.connected and self.polling


def _handler(health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            checks = {"/livez": lambda: health.alive, "/readyz": lambda: health.ready, "/healthz": lambda: health.ready}
            check = checks.get(self.path.split("?", 1)[0])
            if check is None:
                self.send_error(404, "use /livez, /readyz or /healthz")
                return
            body = json.dumps(asdict(health)).encode()
            self.send_response(200 if check() else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a probe every few seconds would drown the worker's own log

    return Handler


@contextmanager
def serving(health: Health, host: str, port: int | None) -> Iterator[int | None]:
    """Serve `health` on `host:port` (0: a free port) for the duration of the block; yields the port (None: off)."""
    if port is None:
        yield None
        return
    server = ThreadingHTTPServer((host, port), _handler(health))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="health-endpoint", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
