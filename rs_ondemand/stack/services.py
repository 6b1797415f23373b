"""The services of the embedded stack: a process service per program (`service_base.ProcessService`), and
PostgreSQL."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import ClassVar

from rs_ondemand.config import (
    DEFAULT_BUCKET,
    DEFAULT_NAMESPACE,
    DEFAULT_REGION,
    DEFAULT_TASK_QUEUE,
    DEFAULT_WORK_BUCKET,
)
from rs_ondemand.stack import procs
from rs_ondemand.stack.envfile import write_private
from rs_ondemand.stack.errors import StackError
from rs_ondemand.stack.health import http_ok, wait_until
from rs_ondemand.stack.ports import HOST
from rs_ondemand.stack.postgres import (
    CATALOG_DB,
    PG_USER,
    PgCluster,
    choose_pg_dir,
    ensure_install,
    find_install,
    read_postmaster_pid,
)
from rs_ondemand.stack.search_attributes import SEARCH_ATTRIBUTES
from rs_ondemand.stack.service_base import ProcessService, Service, StackContext
from rs_ondemand.stack.stations_file import ICD_STATIONS, STATIONS, STATIONS_FILE, stations_yaml

WORKER_READY_MARKER = "Worker started"


def find_tool(name: str) -> str:
    """A console script of our venv (next to the running interpreter), else one on PATH."""
    # Not resolved: the venv's python is a symlink into the base interpreter, whose bin has no tools.
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    if found := shutil.which(name):
        return found
    raise StackError(f"'{name}' not found next to {sys.executable} or on PATH: run `uv sync --all-extras`")


class TemporalService(ProcessService):
    """The Temporal dev server with its UI, persisted in a SQLite file so histories survive a restart."""

    name = "temporal"
    ports: ClassVar[dict[str, int | None]] = {
        "temporal": 7233,
        "temporal_ui": 8233,
        "temporal_http": 7243,
        "temporal_metrics": 9233,
    }

    def command(self) -> list[str]:
        argv = [
            find_tool("temporal"),
            *("server", "start-dev", "--ip", HOST),
            *("--port", str(self.ctx.port("temporal")), "--ui-port", str(self.ctx.port("temporal_ui"))),
            *("--http-port", str(self.ctx.port("temporal_http"))),
            *("--metrics-port", str(self.ctx.port("temporal_metrics"))),
            *("--db-filename", str(self.ctx.state_dir / "temporal.db")),
            *("--log-level", "warn", "--ui-disable-news-fetch"),
            # The default of 20 polls/s caps the dev server at ~50 ms per workflow step (measured here;
            # `bench orchestration` shows the effect).
            *("--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000"),
            # WAL + synchronous=normal: far fewer fsyncs per history event, still crash-safe for a dev db.
            *("--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"),
        ]
        for key, kind in SEARCH_ATTRIBUTES.items():
            argv += ["--search-attribute", f"{key}={kind}"]
        return argv

    def url(self) -> str:
        return f"{HOST}:{self.ctx.port('temporal')}"

    def healthy(self) -> bool:
        # The namespace answers only once the frontend serves and `default` is registered: what clients need.
        api = f"{self.ctx.http_url('temporal_http')}/api/v1/namespaces/{DEFAULT_NAMESPACE}"
        return http_ok(api) and http_ok(self.ctx.http_url("temporal_ui") + "/")

    def exports(self) -> dict[str, str]:
        return {
            "TEMPORAL_ADDRESS": self.url(),
            "TEMPORAL_NAMESPACE": DEFAULT_NAMESPACE,
            "TEMPORAL_UI_URL": self.ctx.http_url("temporal_ui"),
            "RS_TASK_QUEUE": DEFAULT_TASK_QUEUE,
        }


class S3Service(ProcessService):
    """moto's S3 backend served by uvicorn (`s3_server.py`; in memory: objects do not survive `down`) with our two
    buckets."""

    name = "s3"
    ports: ClassVar[dict[str, int | None]] = {"s3": 9000}

    def command(self) -> list[str]:
        return [sys.executable, "-m", "rs_ondemand.stack.s3_server", "--host", HOST, "--port", str(self.ctx.port("s3"))]

    def url(self) -> str:
        return self.ctx.http_url("s3")

    def healthy(self) -> bool:
        return http_ok(self.url() + "/")

    def after_ready(self) -> None:
        import boto3
        from botocore.config import Config

        env = self.exports()
        client = boto3.client(
            "s3",
            endpoint_url=self.url(),
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=DEFAULT_REGION,
            # Path-style and checksums only when required: botocore's default CRC trailers and virtual-host
            # addressing are not understood by every S3-compatible server.
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        try:
            existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
            for bucket in (DEFAULT_BUCKET, DEFAULT_WORK_BUCKET):
                if bucket not in existing:
                    client.create_bucket(Bucket=bucket)
        finally:
            client.close()

    def exports(self) -> dict[str, str]:
        state = self.ctx.state
        return {
            "S3_ENDPOINT_URL": self.url(),
            # moto accepts any key; random ones keep a stack's clients from silently using real AWS keys.
            "AWS_ACCESS_KEY_ID": state.secret("aws_access_key_id", lambda: "RS" + secrets.token_hex(9).upper()),
            "AWS_SECRET_ACCESS_KEY": state.secret("aws_secret_access_key"),
            "AWS_DEFAULT_REGION": DEFAULT_REGION,
            "RS_BUCKET": DEFAULT_BUCKET,
            "RS_WORK_BUCKET": DEFAULT_WORK_BUCKET,
        }


class SimulatorService(ProcessService):
    """The CADIP/AUXIP/PRIP station simulator (OData + STAC facades), one set of credentials for all three."""

    name = "simulator"
    ports: ClassVar[dict[str, int | None]] = {"simulator": 8090}

    def _credentials(self) -> dict[str, str]:
        state = self.ctx.state
        return {
            "CLIENT_ID": state.secret("simulator_client_id", lambda: f"rs-ondemand-{secrets.token_hex(4)}"),
            "CLIENT_SECRET": state.secret("simulator_client_secret"),
            "USERNAME": state.secret("simulator_username", lambda: f"operator-{secrets.token_hex(3)}"),
            "PASSWORD": state.secret("simulator_password"),
        }

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "rs_simulator",
            "--host",
            HOST,
            "--port",
            str(self.ctx.port("simulator")),
        ]

    def environment(self) -> dict[str, str]:
        env = {f"SIMULATOR_{key}": value for key, value in self._credentials().items()}
        return env | {"SIMULATOR_STATIONS": json.dumps(ICD_STATIONS)}

    def url(self) -> str:
        return self.ctx.http_url("simulator")

    def healthy(self) -> bool:
        return http_ok(self.url() + "/health")

    def exports(self) -> dict[str, str]:
        root = self.url()
        env = {"SIMULATOR_URL": root}
        env |= {f"{station.upper()}_URL": f"{root}/{station}/stac" for station in STATIONS}
        for station in STATIONS:
            prefix = station.upper()
            env[f"{prefix}_ODATA_URL"] = f"{root}/{station}"
            env[f"{prefix}_TOKEN_URL"] = f"{root}/{station}/oauth2/token"
            env |= {f"{prefix}_{key}": value for key, value in self._credentials().items()}
        stations_file = self.ctx.state_dir / STATIONS_FILE
        write_private(stations_file, stations_yaml(root))
        return env | {"RS_STATIONS_FILE": str(stations_file)}


class PostgresService(Service):
    """PostgreSQL + PostGIS with the pgstac schema; its data dir survives `down` (the catalog persists)."""

    name = "postgres"
    ports: ClassVar[dict[str, int | None]] = {"postgres": 5439}
    stop_last = True

    def _cluster(self) -> PgCluster:
        state = self.ctx.state
        if state.pg_dir is None:
            state.pg_dir = str(choose_pg_dir(self.ctx.state_dir))
        return PgCluster(find_install(), Path(state.pg_dir), port=self.ctx.port("postgres"), log_path=self.log_path)

    def url(self) -> str:
        return f"postgresql://{PG_USER}@{HOST}:{self.ctx.port('postgres')}/{CATALOG_DB}"

    def pid(self) -> int | None:
        # The cluster's own pid file is the truth: pg_ctl daemonises the server away from us.
        if self.ctx.state.pg_dir is None:
            return None
        postmaster = read_postmaster_pid(Path(self.ctx.state.pg_dir) / "data")
        return postmaster if postmaster is not None and procs.pid_running(postmaster) else None

    def healthy(self) -> bool:
        return self.has_ports() and self._cluster().accepts_connections()

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        ensure_install(notify=self.ctx.notify, log_path=self.log_path)
        cluster = self._cluster()
        cluster.init()
        postmaster = cluster.start()
        argv = ["postgres", "-D", str(cluster.data_dir)]
        self.ctx.state.processes[self.name] = procs.record_for(postmaster, argv)
        cluster.ensure_database()
        cluster.migrate(find_tool("pypgstac"), os.environ)

    def wait_ready(self) -> None:
        wait_until(self.name, self.healthy, timeout=30.0, log_path=self.log_path, alive=self.running)

    def request_stop(self) -> None:
        # pg_ctl's fast mode closes the catalog's connections and checkpoints: committed data is kept.
        if self.running():
            self._cluster().stop()
        self.ctx.state.processes.pop(self.name, None)

    def catalog_env(self) -> dict[str, str]:
        return self._cluster().env()


class CatalogService(ProcessService):
    """stac-fastapi-pgstac with the Transactions extension on."""

    name = "catalog"
    ports: ClassVar[dict[str, int | None]] = {"catalog": 8082}
    depends_on = ("postgres",)

    def command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "uvicorn", "stac_fastapi.pgstac.app:create_app", "--factory"),
            *("--host", HOST, "--port", str(self.ctx.port("catalog")), "--no-access-log"),
        ]

    def environment(self) -> dict[str, str]:
        return {
            **PostgresService(self.ctx).catalog_env(),
            "ENABLE_TRANSACTIONS_EXTENSIONS": "true",
            # Shown on the landing page; also silences the "Using default values" warning.
            "STAC_FASTAPI_TITLE": "rs-ondemand local catalog",
            "STAC_FASTAPI_DESCRIPTION": "Catalog of the rs-ondemand embedded stack",
            "STAC_FASTAPI_LANDING_ID": "rs-ondemand-catalog",
            "STAC_FASTAPI_VERSION": "1.0.0",
        }

    def url(self) -> str:
        return self.ctx.http_url("catalog")

    def healthy(self) -> bool:
        return http_ok(self.url() + "/_mgmt/ping") and http_ok(self.url() + "/")

    def exports(self) -> dict[str, str]:
        return {"CATALOG_URL": self.url()}


class WorkerService(ProcessService):
    """`python -m rs_ondemand.worker` with the env file's variables."""

    name = "worker"
    # Only Temporal is needed to start polling; the other servers may finish starting meanwhile (an early
    # activity would just be retried), which saves the catalog's start-up time on every `up`.
    depends_on = ("temporal",)
    ready_timeout = 20.0

    def __init__(self, ctx: StackContext) -> None:
        super().__init__(ctx)
        self._log_offset: int | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "rs_ondemand.worker"]

    def environment(self) -> dict[str, str]:
        # RS_STACK_DIR too: the settings' fallback env file must be this stack's, not another one's.
        return {**self.ctx.env, "RS_STACK_DIR": str(self.ctx.state_dir)}

    def cwd(self) -> Path:
        return Path.cwd()

    def url(self) -> str:
        return f"{HOST}:{self.ctx.port('temporal')}/{DEFAULT_TASK_QUEUE}"

    def healthy(self) -> bool:
        return self.running()

    def start(self) -> None:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        super().start()

    def _logged_ready(self) -> bool:
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset or 0)
            lines = log.read().decode(errors="replace").splitlines()
        # Not in our own "=== ... start: <command>" header line, only in what the worker printed.
        return any(WORKER_READY_MARKER in line and not line.startswith("=== ") for line in lines)

    def wait_ready(self) -> None:
        if self._log_offset is None:  # already running before this `up`
            wait_until(self.name, self.running, timeout=1.0, log_path=self.log_path)
            return
        # The worker has no endpoint: ready once it logs the marker, or at least still alive by then.
        try:
            wait_until(
                self.name,
                self._logged_ready,
                timeout=self.ready_timeout,
                log_path=self.log_path,
                alive=self.running,
            )
        except StackError:
            if not self.running():
                raise
            self.ctx.notify(f"worker runs but has not logged '{WORKER_READY_MARKER}' yet (see {self.log_path})")
