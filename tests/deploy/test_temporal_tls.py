"""The worker and the starter reach Temporal over TLS, mTLS or with an API key, only with the right material, and
say in one line what is wrong otherwise.

A real Temporal dev server behind a real TLS endpoint (tls_gateway.py: the dev server has no TLS options of its
own), with throw-away certificates: a CA, the server's certificate, a client certificate of that CA, and a client
certificate of another CA. The worker and the starter are the installed `rs-ondemand` command, configured by the
environment only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rs_ondemand.config import TemporalSettings
from rs_ondemand.stack.ports import free_port
from rs_ondemand.stack.search_attributes import SEARCH_ATTRIBUTES
from rs_ondemand.stack.services import find_tool
from tests.deploy.tls_gateway import Authority, Pem, tls_gateway

CLI = str(Path(sys.executable).with_name("rs-ondemand"))
API_KEY = "test-api-key-0123456789"
# Everything the settings read comes from the environment we give: none of the suite's stack variables.
SETTINGS_PREFIXES = ("TEMPORAL_", "RS_", "CADIP_", "AUXIP_", "PRIP_", "CATALOG_", "S3_", "AWS_", "OTEL_")


@dataclass(frozen=True)
class Pki:
    ca: Pem
    server: Pem
    client: Pem
    stranger: Pem
    """A client certificate of another CA."""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca, other = Authority(directory, "ca"), Authority(directory, "other-ca")
    return Pki(
        ca.pem, ca.issue("localhost", server=True), ca.issue("worker", server=False), other.issue("x", server=False)
    )


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A plaintext Temporal dev server (in memory, with our search attributes) on loopback."""
    port = free_port()
    http_port = free_port(avoid=[port])
    argv = [find_tool("temporal"), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port)]
    argv += ["--http-port", str(http_port), "--metrics-port", str(free_port(avoid=[port, http_port]))]
    argv += ["--log-level", "error"]
    for key, kind in SEARCH_ATTRIBUTES.items():
        argv += ["--search-attribute", f"{key}={kind}"]
    log = tmp_path_factory.mktemp("temporal") / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"http://127.0.0.1:{http_port}/api/v1/namespaces/default"):
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the dev server did not start in 60 s"
            time.sleep(0.3)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def mtls_address(dev_server: str, pki: Pki) -> Iterator[str]:
    with tls_gateway(dev_server, pki.server, client_ca=pki.ca) as address:
        yield address


@pytest.fixture(scope="module")
def api_key_address(dev_server: str, pki: Pki) -> Iterator[str]:
    with tls_gateway(dev_server, pki.server, api_key=API_KEY) as address:
        yield address


def environment(**settings: str | Path) -> dict[str, str]:
    """This process's environment without any setting, plus `settings` (TEMPORAL_ADDRESS=..., ...)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(SETTINGS_PREFIXES)}
    env["RS_STACK_DIR"] = "/nonexistent"  # no .stack/env underneath
    return env | {key: str(value) for key, value in settings.items()}


def mtls(pki: Pki, address: str, client: Pem | None = None) -> dict[str, str | Path]:
    client = client or pki.client
    return {
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.ca.cert,
        "TEMPORAL_TLS_CLIENT_CERT_PATH": client.cert,
        "TEMPORAL_TLS_CLIENT_KEY_PATH": client.key,
    }


def cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The process failed and said why on exactly one line of stderr (no traceback, nothing else)."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, result.stdout
    assert len(lines) == 1, result.stderr
    return lines[0]


@contextmanager
def worker(env: dict[str, str], role: str, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`rs-ondemand worker --role ROLE` with its health endpoint on a free port; yields it and the endpoint."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [CLI, "worker", "--role", role], env=env | {"RS_HEALTH_PORT": str(port)}, stdout=out, stderr=out
        )
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_ready(process: subprocess.Popen[bytes], endpoint: str, log: Path) -> dict[str, object]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the worker exited: {log.read_text()}"
        try:
            answer = httpx.get(f"{endpoint}/readyz", timeout=2)
            if answer.status_code == 200:
                return dict(answer.json())
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the worker was not ready in 120 s: {log.read_text()}")


def stage(env: dict[str, str]) -> str:
    """Start a CADIP staging request with the starter; its workflow id."""
    session = f"S1A_TLS{uuid.uuid4().hex[:8]}"
    result = cli("stage", "cadip", "--session", session, "--owner", "tls", "--catalog-collection", "c", env=env)
    assert result.returncode == 0, result.stderr
    return next(line.split(": ", 1)[1] for line in result.stderr.splitlines() if line.startswith("workflow id: "))


# --- the right material connects ---


def test_worker_and_starter_work_over_mtls(pki: Pki, mtls_address: str, tmp_path: Path) -> None:
    queue = f"tls-{uuid.uuid4().hex[:8]}"
    # The request's activities fail against a closed port and retry: the test needs only its workflow task.
    # One station of each kind (an unset URL means no such station).
    stations = {f"{kind}_URL": f"http://127.0.0.1:9/{kind.lower()}/stac" for kind in ("CADIP", "AUXIP", "PRIP")}
    env = environment(**mtls(pki, mtls_address), RS_TASK_QUEUE=queue, **stations)
    with worker(env, "staging", tmp_path / "worker.log") as (process, endpoint):
        health = wait_ready(process, endpoint, tmp_path / "worker.log")
        assert health["started"] and health["connected"] and health["polling"] and health["role"] == "staging"
        # Staging polls the main queue and every station's download queue, not the EOPF queue.
        assert set(health["task_queues"]) == {queue} | {f"{queue}-downloads-{s}" for s in ("cadip", "auxip", "prip")}  # type: ignore[arg-type]
        workflow_id = stage(env)
        status = cli("status", workflow_id, "--json", env=env)
        assert status.returncode == 0, status.stderr
        # `progress` is a query: only the worker, polling through the same mTLS endpoint, can have answered it.
        assert json.loads(status.stdout)["progress"] is not None, status.stdout


def test_processing_worker_and_starter_work_with_an_api_key(pki: Pki, api_key_address: str, tmp_path: Path) -> None:
    queue = f"tls-{uuid.uuid4().hex[:8]}"
    env = environment(
        TEMPORAL_ADDRESS=api_key_address,
        TEMPORAL_API_KEY=API_KEY,
        TEMPORAL_TLS_SERVER_CA_CERT_DATA=pki.ca.cert.read_text(),
        RS_TASK_QUEUE=queue,
    )
    with worker(env, "processing", tmp_path / "worker.log") as (process, endpoint):
        health = wait_ready(process, endpoint, tmp_path / "worker.log")
        assert health["task_queues"] == [f"{queue}-processor"], health
        stage(env)  # the starter connects and starts a workflow with the key
    assert API_KEY not in (tmp_path / "worker.log").read_text()


# --- anything else fails at once, in one line that says what to fix ---

WRONG = {
    "mTLS server, no client certificate": (
        lambda pki, mtls_at, keyed_at: {"TEMPORAL_ADDRESS": mtls_at, "TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.ca.cert},
        "it requires a client certificate",
    ),
    "mTLS server, a client certificate of another CA": (
        lambda pki, mtls_at, keyed_at: mtls(pki, mtls_at, pki.stranger),
        "it does not accept our client certificate",
    ),
    "mTLS server, its CA not given": (
        lambda pki, mtls_at, keyed_at: mtls(pki, mtls_at) | {"TEMPORAL_TLS_SERVER_CA_CERT_PATH": ""},
        "not signed by a CA we trust",
    ),
    "TLS server, plaintext client": (
        lambda pki, mtls_at, keyed_at: {"TEMPORAL_ADDRESS": mtls_at},
        "does it require TLS",
    ),
    "API key server, wrong key": (
        lambda pki, mtls_at, keyed_at: {
            "TEMPORAL_ADDRESS": keyed_at,
            "TEMPORAL_API_KEY": "not-the-key",
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.ca.cert,
        },
        "refused our credentials",
    ),
    "API key server, no key": (
        lambda pki, mtls_at, keyed_at: {"TEMPORAL_ADDRESS": keyed_at, "TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.ca.cert},
        "refused our credentials",
    ),
    "server name the certificate lacks": (
        lambda pki, mtls_at, keyed_at: mtls(pki, mtls_at) | {"TEMPORAL_TLS_SERVER_NAME": "temporal.example"},
        "not valid for this host name",
    ),
    "client key file missing": (
        lambda pki, mtls_at, keyed_at: mtls(pki, mtls_at) | {"TEMPORAL_TLS_CLIENT_KEY_PATH": "/nonexistent/key.pem"},
        "TEMPORAL_TLS_CLIENT_KEY_PATH: cannot read /nonexistent/key.pem",
    ),
    "client certificate without its key": (
        lambda pki, mtls_at, keyed_at: mtls(pki, mtls_at) | {"TEMPORAL_TLS_CLIENT_KEY_PATH": ""},
        "needs the client certificate and its key",
    ),
    "key material that is no PEM": (
        lambda pki, mtls_at, keyed_at: (
            mtls(pki, mtls_at) | {"TEMPORAL_TLS_CLIENT_KEY_DATA": "secret", "TEMPORAL_TLS_CLIENT_KEY_PATH": ""}
        ),
        "TEMPORAL_TLS_CLIENT_KEY_DATA is not PEM",
    ),
}


def test_the_starter_refuses_wrong_material_in_one_line(pki: Pki, mtls_address: str, api_key_address: str) -> None:
    """Every case, a few at a time (independent processes): each fails with its own one-line reason."""

    def attempt(case: str) -> str | None:
        make, expected = WRONG[case]
        result = cli("status", "any-workflow", env=environment(**make(pki, mtls_address, api_key_address)))
        try:
            line = one_line_error(result)
            assert line.startswith("error: ") and expected in line, line
            assert "not-the-key" not in line and API_KEY not in line
        except AssertionError as failure:
            return f"{case}: {failure}"
        return None

    with ThreadPoolExecutor(max_workers=3) as pool:
        problems = [problem for problem in pool.map(attempt, WRONG) if problem]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", ["mTLS server, a client certificate of another CA", "API key server, wrong key"])
def test_the_worker_refuses_wrong_material_in_one_line(
    case: str, pki: Pki, mtls_address: str, api_key_address: str, tmp_path: Path
) -> None:
    make, expected = WRONG[case]
    env = environment(**make(pki, mtls_address, api_key_address))
    result = subprocess.run([CLI, "worker", "--role", "all"], env=env, capture_output=True, text=True, timeout=120)
    line = one_line_error(result)
    assert "cannot connect to Temporal at" in line and expected in line, line


def test_tls_settings_are_read_from_temporal_variables(monkeypatch: pytest.MonkeyPatch, pki: Pki) -> None:
    """The names are Temporal's own environment configuration: the `temporal` CLI reads the same ones."""
    for key, value in mtls(pki, "temporal.example:7233").items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.setenv("TEMPORAL_API_KEY", API_KEY)
    settings = TemporalSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.tls_client_cert_path == pki.client.cert and settings.tls_client_key_path == pki.client.key
    assert settings.api_key is not None and API_KEY not in repr(settings)


def test_the_worker_names_a_namespace_it_cannot_poll(pki: Pki, mtls_address: str) -> None:
    """The right material, the wrong namespace: the pollers' namespace check fails, and the worker says so."""
    env = environment(**mtls(pki, mtls_address), TEMPORAL_NAMESPACE="no-such-namespace")
    result = subprocess.run(
        [CLI, "worker", "--role", "processing"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "cannot poll Temporal at" in last and "namespace no-such-namespace, mTLS" in last, last
    assert "Namespace no-such-namespace is not found" in last, last
