"""A run on a dask-gateway cluster found by its `cluster_name` label, as RS runs its processors."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.testing import ActivityEnvironment

from rs_ondemand.activities.eopf_runner import WarmRunner
from rs_ondemand.activities.processor import ProcessorActivities
from rs_ondemand.bench.dask_cluster import stop_process_groups
from rs_ondemand.config import ProcessorSettings, Settings
from rs_ondemand.models.processor_run import GatewayAuth, GatewayDaskCluster, RunProcessorInput
from rs_ondemand.stack.ports import free_port
from tests.support.eopf_runs import StagedSession, assert_demo_product, demo_payload

pytestmark = pytest.mark.timeout(180)

PASSWORD = "rs-gateway-pass"
LABEL = "dask-l0"

CONFIG = """
from dask_gateway_server.options import Options, String
c.DaskGateway.address = "127.0.0.1:{api_port}"
c.Proxy.address = "127.0.0.1:{proxy_port}"
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = "{password}"
c.DaskGateway.db_url = "sqlite:///{folder}/gateway.sqlite"
c.Backend.cluster_options = Options(String("cluster_name", default="none"), handler=lambda options: {{}})
# distributed 2026 has no dask-scheduler / dask-worker scripts: the gateway must run `dask scheduler|worker`.
c.ClusterConfig.scheduler_cmd = ["{dask}", "scheduler"]
c.ClusterConfig.worker_cmd = ["{dask}", "worker"]
c.ClusterConfig.worker_threads = 1
"""

START_CLUSTER = """
import sys, time
from dask_gateway import Gateway, BasicAuth
from dask_gateway.client import ClusterStatus
with Gateway(sys.argv[1], auth=BasicAuth("rs", sys.argv[2])) as gateway:
    options = gateway.cluster_options()
    options.cluster_name = sys.argv[3]
    name = gateway.submit(options)  # submitted, not connected: it keeps running after this script
    deadline = time.monotonic() + 60
    while gateway.get_cluster(name).status != ClusterStatus.RUNNING:
        assert time.monotonic() < deadline, "the gateway cluster did not start"
        time.sleep(0.3)
    gateway.scale_cluster(name, 2)
    print(name)
"""


@pytest.fixture
def gateway(eopf_executable: Path, tmp_path: Path) -> Iterator[str]:
    """A local dask-gateway (from the EOPF venv) with one running cluster labelled dask-l0; its URL."""
    bin_dir = eopf_executable.parent
    api_port, proxy_port = free_port(), free_port()
    config = tmp_path / "gateway_config.py"
    config.write_text(
        CONFIG.format(
            api_port=api_port, proxy_port=proxy_port, password=PASSWORD, folder=tmp_path, dask=bin_dir / "dask"
        )
    )
    log = (tmp_path / "gateway.log").open("w")
    server = subprocess.Popen(
        [bin_dir / "dask-gateway-server", "-f", config],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{proxy_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "gateway.log").read_text()
            time.sleep(0.3)
        started = subprocess.run(
            [bin_dir / "python", "-c", START_CLUSTER, url, PASSWORD, LABEL],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert started.returncode == 0, started.stderr[-3000:]
        yield url
    finally:
        # The local backend runs the clusters' schedulers and workers as children of the server's group.
        stop_process_groups([server], grace_s=20)
        log.close()


async def test_demo_processor_runs_on_a_labelled_gateway_cluster(
    store: Any,
    processor_settings: ProcessorSettings,
    runner: WarmRunner,
    gateway: str,
    demo_units: list[dict[str, Any]],
    staged_session: StagedSession,
    settings: Settings,
    s3: Any,
) -> None:
    """The request names the label; the run finds the cluster at run time and authenticates with a password
    that only the EOPF process's environment holds."""
    cluster = GatewayDaskCluster(address=gateway, cluster_name=LABEL, auth=GatewayAuth(type="basic", username="rs"))
    processor = ProcessorActivities(
        store,
        processor_settings.model_copy(
            update={"dask_clusters": {LABEL: cluster}, "dask_gateway_password": SecretStr(PASSWORD)}
        ),
        runner=runner,
    )
    rid = f"test-{uuid.uuid4().hex[:10]}"
    payload = demo_payload(demo_units, staged_session, settings, rid)
    result = await ActivityEnvironment().run(
        processor.run_processor, RunProcessorInput(run_id=rid, dask_cluster_label=LABEL, payload_yaml=payload)
    )
    (product,) = result.written_products
    assert_demo_product(s3, product.path, staged_session)
