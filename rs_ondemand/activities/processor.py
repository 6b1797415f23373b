"""DPR processor runs: the EOPF trigger as a subprocess of its own process group, heartbeating its progress.

Pattern A of infra-notes.md §5.2: `eopf trigger local payload.yaml` runs in the EOPF venv (Python 3.13 and 1.3 GB
of science stack stay out of the worker), on the Dask cluster the request's label names. The EOPF process only
drives; the work happens on the cluster. A cancellation kills the whole process group (SIGTERM, a grace period,
then SIGKILL), so no driver, LocalCluster nanny or worker outlives the activity.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import yaml
from temporalio import activity

from rs_ondemand.activities.storage import ObjectStore, item_prefix, translate_s3_errors
from rs_ondemand.config import DaskCluster, ProcessorSettings, S3Settings
from rs_ondemand.dpr.payload import (
    build_payload,
    payload_yaml,
    run_output_prefix,
    with_dask_context,
    with_progress_callback,
    with_tracing,
)
from rs_ondemand.dpr.plan import plan_request
from rs_ondemand.errors import ConfigurationError, InvalidInputError, OnDemandError
from rs_ondemand.models.dpr import (
    PayloadSpec,
    ProcessorProgress,
    RunProcessorInput,
    RunProcessorResult,
    S3StorageRef,
    WritePayloadInput,
    WrittenProduct,
)
from rs_ondemand.models.processing import (
    AdfItem,
    DprProcessIn,
    PreparedPayload,
    PreparePayloadInput,
    ProcessingPlan,
)
from rs_ondemand.names import safe_segment
from rs_ondemand.processors.registry import get_tasktable

log = logging.getLogger(__name__)

PAYLOAD_NAME = "payload.yaml"
PROGRESS_NAME = "progress.jsonl"
REPORT_MARKER = '"message":"Workflow execution report"'
"""EOPF logs its execution report as one JSON object on one line (`WorkflowExecutionReport.format`)."""

PROGRESS_LINE = re.compile(r"Workflow progress: (\d+)%")
TAIL_CHARS = 1500
"""The end of EOPF's output kept in a failure (error text is capped at 2000 characters in workflow history)."""


class ProcessorFailedError(OnDemandError):
    """The EOPF run failed. Retryable: an operator may fix the cause (data, cluster) and retry the step."""

    def __init__(self, run_id: str, returncode: int, reason: str, output_tail: str) -> None:
        super().__init__(
            f"EOPF run {run_id!r} failed (exit code {returncode}): {reason}\n--- last EOPF output ---\n{output_tail}"
        )
        self.returncode = returncode


class EopfNotInstalledError(ConfigurationError):
    """The worker has no EOPF environment."""

    def __init__(self, executable: Path) -> None:
        super().__init__(f"EOPF is not installed at {executable}: run scripts/setup-eopf (or set RS_EOPF_EXECUTABLE)")


def with_output_ids(result: RunProcessorResult, payload: dict[str, Any]) -> RunProcessorResult:
    """Name each written product after the payload output whose folder holds it: EOPF reports the *unit's* output
    name, which two steps of one processing unit share, while each payload output has a folder of its own."""
    folders = {
        str(entry["path"]).rstrip("/") + "/": str(entry["id"])
        for entry in (payload.get("io") or {}).get("output_products") or []
        if entry.get("path") and entry.get("id")
    }

    def output_of(product: WrittenProduct) -> str:
        owners = [folder for folder in folders if product.path.startswith(folder)]
        return folders[max(owners, key=len)] if owners else product.output_id

    products = [product.model_copy(update={"output_id": output_of(product)}) for product in result.written_products]
    return result.model_copy(update={"written_products": products})


def staged_folder(bucket: str, owner_id: str, item: AdfItem) -> str:
    """Where a planned (not yet staged) ADF item will be: its folder, which EOPF reads as the ADF."""
    return f"s3://{bucket}/{item_prefix(owner_id, item.collection, item.id)}"


def split_s3_url(url: str) -> tuple[str, str]:
    match = re.fullmatch(r"s3://([^/]+)/(.+)", url)
    if match is None:
        raise InvalidInputError(f"{url!r} is not an s3://bucket/key URL")
    return match.group(1), match.group(2)


INHERITED_VARIABLES = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "SSL_CERT_FILE"})
INHERITED_PREFIXES = ("LC_", "OTEL_", "EOPF_", "DASK_", "REQUESTS_CA_", "CURL_CA_")
"""Environment of the worker passed to EOPF: locale, temp dir, CA bundles, telemetry, EOPF and Dask settings."""


def _inherited(name: str) -> bool:
    return name in INHERITED_VARIABLES or name.startswith(INHERITED_PREFIXES)


def _last_chars(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


def _traceparent() -> str | None:
    """The current span as a W3C `traceparent`, for the EOPF process's environment."""
    try:
        from opentelemetry.propagate import inject
    except ImportError:  # pragma: no cover - temporalio[opentelemetry] brings it
        return None
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


class _RunMonitor:
    """Follows one EOPF run: its output (tail and execution report) and its progress events."""

    def __init__(self, progress_path: Path, tail_lines: int) -> None:
        self.progress_path = progress_path
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self.report: dict[str, Any] | None = None
        self.progress = ProcessorProgress()
        self.products: dict[str, WrittenProduct] = {}
        self._offset = 0
        self._started = time.monotonic()
        self._units_done: set[str] = set()

    async def pump(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            self.tail.append(text)
            if progress := PROGRESS_LINE.search(text):
                self.progress.percent = int(progress.group(1))
            if REPORT_MARKER in text:
                with contextlib.suppress(ValueError):
                    self.report = json.loads(text[text.index("{") :])

    def poll(self) -> ProcessorProgress:
        """Read the events appended since the last poll; returns the progress so far."""
        with contextlib.suppress(FileNotFoundError), self.progress_path.open("rb") as events:
            events.seek(self._offset)
            chunk = events.read()
            # Only whole lines: the callback writes one line per event, the last may still be arriving.
            whole = chunk[: chunk.rfind(b"\n") + 1]
            self._offset += len(whole)
            for line in whole.splitlines():
                with contextlib.suppress(ValueError):
                    self._apply(json.loads(line))
        self.progress.elapsed_s = round(time.monotonic() - self._started, 1)
        return self.progress

    def _apply(self, event: dict[str, Any]) -> None:
        kind = str(event.get("event", ""))
        self.progress.event = kind
        self.progress.units_total = int(event.get("units_total") or self.progress.units_total)
        if event.get("unit"):
            self.progress.unit = str(event["unit"])
        if event.get("trace_id"):
            self.progress.trace_id = str(event["trace_id"])
        if kind == "after_unit" and event.get("unit"):
            self._units_done.add(str(event["unit"]))
            self.progress.units_done = len(self._units_done)
        if kind in ("after_output_write_submit", "after_output_write_flush") and event.get("product_path"):
            output_id = str(event.get("output_id"))
            self.products[str(event["product_path"])] = WrittenProduct(
                output_id=output_id, path=str(event["product_path"]), unit=event.get("unit")
            )
            self.progress.outputs_written = len(self.products)

    def written_products(self) -> list[WrittenProduct]:
        """From EOPF's report when it printed one, else from the callback events."""
        if self.report and self.report.get("written_products"):
            return [
                WrittenProduct(output_id=str(p.get("product_id")), path=str(p["path"]), unit=p.get("unit"))
                for p in self.report["written_products"]
            ]
        return list(self.products.values())

    def failure_reason(self) -> str:
        exception = (self.report or {}).get("exception") or {}
        if exception:
            return f"{exception.get('type')}: {exception.get('message')}"
        errors = [line for line in self.tail if "Error" in line or "ERROR" in line]
        return errors[-1] if errors else "no error message (see the output below)"


RUN_MARKER = "RS_EOPF_RUN_ID"
"""In the environment of an EOPF run and of every process it starts (Dask's too): which run they belong to."""


def kill_earlier_attempts(run_id: str) -> list[int]:
    """SIGKILL the processes of this machine that belong to `run_id` (by their environment), with their process
    groups; returns their pids. A worker killed with SIGKILL cannot stop its EOPF run: the next attempt does."""
    marker = f"{RUN_MARKER}={run_id}".encode()
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            pid = int(entry.name)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except OSError:  # gone meanwhile, or not ours to read
            continue
    if killed:
        log.warning("killed %d processes left by an earlier attempt of EOPF run %s: %s", len(killed), run_id, killed)
    return killed


RUN_FOLDER_PREFIX = "rs-eopf-"
OWNER_FILE = "worker"
"""In a run folder: which worker process made it (pid and start time, so a reused pid is not taken for it)."""


def _started_at(pid: int) -> str | None:
    """A process's start time (clock ticks since boot, /proc/PID/stat field 22); None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def new_run_folder(run_id: str) -> Path:
    """A fresh folder for one attempt of `run_id`, marked as this worker process's."""
    # The run id in the name tells an operator which run a folder belongs to. Kept short: EOPF's and Dask's
    # temporary files go below it (TMPDIR), and Unix socket paths there are limited to 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix=f"{RUN_FOLDER_PREFIX}{safe_segment(run_id)[:32]}-"))
    (folder / OWNER_FILE).write_text(f"{os.getpid()} {_started_at(os.getpid())}")
    return folder


def remove_abandoned_run_folders(grace_s: float = 300) -> list[Path]:
    """Remove the run folders whose worker process is gone (killed before its `finally` could): returns them.
    A folder without an owner yet is left alone for `grace_s` (it is being made)."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{RUN_FOLDER_PREFIX}*"):
        try:
            pid, started = (folder / OWNER_FILE).read_text().split()
            abandoned = _started_at(int(pid)) != started
        except FileNotFoundError:
            abandoned = time.time() - folder.stat().st_mtime > grace_s
        except (OSError, ValueError):  # not a run folder of ours, or gone meanwhile
            continue
        if abandoned:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        log.warning("removed %d run folders left by dead workers: %s", len(removed), [f.name for f in removed])
    return removed


def _parent_death_wrapper() -> list[str]:
    """A command prefix that makes the EOPF process die with the worker (SIGKILL when its parent dies).

    A worker killed with SIGKILL cannot stop its EOPF run; the run then outlives its attempt, writes outputs the
    request may have given up, and competes with the retried attempt. EOPF's Dask processes watch their parent
    (distributed's AsyncProcess), so the whole run goes with the driver.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


async def _stop_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the process group, give it `grace` seconds, then SIGKILL whatever is left of the group."""
    pgid = proc.pid  # start_new_session: the EOPF process leads its own group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), grace)
    _kill_leftovers(pgid)
    await proc.wait()


def _kill_leftovers(pgid: int) -> None:
    # Dask nannies and workers are in the group too and may outlive the leader: nothing of it may stay.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class ProcessorActivities:
    """The DPR processor: payload files in S3 and EOPF runs."""

    def __init__(self, store: ObjectStore, settings: ProcessorSettings) -> None:
        self._store = store
        self._settings = settings

    @property
    def s3(self) -> S3Settings:
        return self._store.settings

    @activity.defn
    async def write_payload(self, request: WritePayloadInput) -> None:
        """Upload a generated payload to `s3_payload_file` (RS keeps the payload next to the run's reports)."""
        self._refuse_secret_values(request.payload_yaml)
        bucket, key = split_s3_url(request.s3_payload_file)
        with translate_s3_errors(f"writing {request.s3_payload_file}"):
            await self._store.client.put_object(
                Bucket=bucket, Key=key, Body=request.payload_yaml.encode(), ContentType="application/yaml"
            )

    @activity.defn
    async def plan_processing(self, request: DprProcessIn) -> ProcessingPlan:
        """Read the processor's task table (the request's own, else the registry's) and apply the request to it.

        Raises:
            TaskTableError: unknown processor, malformed table, or a request that does not fit it (non-retryable).
        """
        self._cluster(request.dask_cluster_label)  # an unknown label fails now, before anything is staged
        tasktable = request.tasktable if request.tasktable is not None else get_tasktable(request.processor_name)
        return plan_request(request, tasktable)

    def _cluster(self, label: str) -> DaskCluster:
        cluster = self._settings.dask_clusters.get(label)
        if cluster is None:
            known = ", ".join(sorted(self._settings.dask_clusters)) or "<none>"
            raise InvalidInputError(f"unknown Dask cluster label {label!r}; known: {known}")
        return cluster

    @activity.defn
    async def prepare_payload(self, request: PreparePayloadInput) -> PreparedPayload:
        """Build the run's EOPF payload from the resolved units and upload it to its `s3_payload_file`."""
        run, bucket, owner = safe_segment(request.run_id), self.s3.rs_bucket, request.owner_id
        output_paths = {
            name: run_output_prefix(bucket, owner, collection, run)
            for name, collection in request.plan.output_collections.items()
        }
        spec = PayloadSpec(
            run_id=request.run_id,
            units=request.plan.units,
            input_paths={name: path for unit in request.resolutions for name, path in unit.input_paths.items()},
            adf_paths={
                name: [path for item in items for path in item.hrefs or [staged_folder(bucket, owner, item)]]
                for unit in request.resolutions
                for name, items in unit.adfs.items()
            },
            output_paths=output_paths,
            storage=S3StorageRef(endpoint_url=self.s3.s3_endpoint_url, region_name=self.s3.aws_default_region),
            external_modules=request.plan.external_modules,
            dry_run=request.dry_run,
        )
        text = payload_yaml(build_payload(spec))
        target = request.s3_payload_file or f"s3://{self.s3.rs_work_bucket}/dpr/{run}/{PAYLOAD_NAME}"
        await self.write_payload(WritePayloadInput(s3_payload_file=target, payload_yaml=text))
        return PreparedPayload(
            s3_payload_file=target, payload_yaml=text, output_prefixes=sorted(set(output_paths.values()))
        )

    @activity.defn
    async def discard_run_outputs(self, output_prefixes: list[str]) -> int:
        """Delete what a failed or cancelled run wrote (its own folders only); returns the objects deleted."""
        deleted = 0
        for prefix in output_prefixes:
            bucket, key = split_s3_url(prefix)
            deleted += await self._store.delete_prefix(bucket, key)
        return deleted

    @activity.defn
    async def delete_payload(self, s3_payload_file: str) -> None:
        """Remove a run's payload once it is no longer needed (RS deletes it after processing)."""
        bucket, key = split_s3_url(s3_payload_file)
        with translate_s3_errors(f"deleting {s3_payload_file}"):
            await self._store.client.delete_object(Bucket=bucket, Key=key)

    @activity.defn
    async def run_processor(self, request: RunProcessorInput) -> RunProcessorResult:
        """Run the EOPF trigger on the request's payload and cluster, heartbeating `ProcessorProgress`.

        Raises:
            ProcessorFailedError: EOPF exited non-zero; the message carries its error and last output lines.
            InvalidInputError: unknown Dask cluster label, unreadable payload, or a payload holding a secret.
            EopfNotInstalledError: the EOPF environment is missing.
        """
        executable = self._settings.executable
        if not os.access(executable, os.X_OK):
            raise EopfNotInstalledError(executable)
        cluster = self._cluster(request.dask_cluster_label)
        text = request.payload_yaml if request.payload_yaml is not None else await self._read(request)
        payload = self._prepare(text, cluster)
        rendered = payload_yaml(payload)
        self._refuse_secret_values(rendered)

        # An earlier attempt of this run whose worker died (heartbeat timeout) may still be running here: it would
        # write the same outputs. Nothing of it may outlive its attempt, nor stay in the temp dir.
        await asyncio.to_thread(kill_earlier_attempts, request.run_id)
        await asyncio.to_thread(remove_abandoned_run_folders)
        workdir = await asyncio.to_thread(new_run_folder, request.run_id)
        try:
            (workdir / PAYLOAD_NAME).write_text(rendered, encoding="utf-8")
            return with_output_ids(await self._run(request.run_id, workdir), payload)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    async def _read(self, request: RunProcessorInput) -> str:
        bucket, key = split_s3_url(str(request.s3_payload_file))
        with translate_s3_errors(f"reading {request.s3_payload_file}"):
            response = await self._store.client.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as body:
                return (await body.read()).decode("utf-8")

    def _prepare(self, text: str, cluster: DaskCluster) -> dict[str, Any]:
        try:
            payload = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise InvalidInputError(f"the payload is not valid YAML: {err}") from err
        if not isinstance(payload, dict):
            raise InvalidInputError("the payload must be a YAML mapping")
        general = payload.get("general_configuration") or {}
        if not general.get("triggering__dry_run"):
            # The worker's configuration decides where clusters are (RS's DPR service injects its Dask context
            # too). A dry run opens nothing: starting a cluster for it would only cost time.
            payload = with_dask_context(payload, cluster)
        payload = with_tracing(payload, eopf_spans=self._settings.otlp_endpoint is not None)
        return with_progress_callback(payload, PROGRESS_NAME)

    def _secret_values(self) -> list[str]:
        values = [self.s3.aws_access_key_id, self.s3.aws_secret_access_key]
        values += [self._settings.dask_gateway_password, self._settings.jupyterhub_api_token]
        # Very short values would match by chance in any text; they are not secrets worth the name anyway.
        return [v.get_secret_value() for v in values if v is not None and len(v.get_secret_value()) >= 4]

    def _refuse_secret_values(self, text: str) -> None:
        if any(secret in text for secret in self._secret_values()):
            raise InvalidInputError("the payload holds a credential value: name it as ${VARIABLE} instead")

    def _scrub(self, text: str) -> str:
        for secret in self._secret_values():
            text = text.replace(secret, "***")
        return text

    def _environment(self) -> dict[str, str]:
        """The EOPF process's environment: the basics of ours, plus the values the payload's `${VAR}` name.

        Only what EOPF needs is passed on: the worker's other credentials (stations, catalog) stay out of a
        process that runs third-party processor code.
        """
        env = {key: value for key, value in os.environ.items() if _inherited(key)}
        s3 = self.s3
        named = {
            "AWS_ACCESS_KEY_ID": s3.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": s3.aws_secret_access_key,
            "DASK_GATEWAY_PASSWORD": self._settings.dask_gateway_password,
            "JUPYTERHUB_API_TOKEN": self._settings.jupyterhub_api_token,
        }
        env.update({name: value.get_secret_value() for name, value in named.items() if value is not None})
        env["AWS_DEFAULT_REGION"] = s3.aws_default_region
        if s3.s3_endpoint_url:
            env["S3_ENDPOINT_URL"] = s3.s3_endpoint_url
        if traceparent := _traceparent():
            env["TRACEPARENT"] = traceparent
        if self._settings.otlp_endpoint:
            # EOPF 3.0 exports its spans over OTLP/gRPC only (the worker's own exporter speaks OTLP/HTTP).
            env |= {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_ENDPOINT": self._settings.otlp_endpoint,
                "OTEL_SERVICE_NAME": "eopf",
            }
        env["PYTHONUNBUFFERED"] = "1"  # output lines arrive as they are written, for the error tail
        return env

    async def _run(self, run_id: str, workdir: Path) -> RunProcessorResult:
        monitor = _RunMonitor(workdir / PROGRESS_NAME, self._settings.output_tail_lines)
        # EOPF's temporary folder and Dask's scratch space follow TMPDIR: inside the run's folder, they go with it,
        # even when the run is killed before EOPF could clean up.
        scratch = workdir / "tmp"
        scratch.mkdir()
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *_parent_death_wrapper(),
            str(self._settings.executable),
            "trigger",
            "local",
            str(workdir / PAYLOAD_NAME),
            "--working-dir",
            str(workdir),
            cwd=workdir,
            env=self._environment() | {"TMPDIR": str(scratch), RUN_MARKER: run_id},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Its own process group: a cancellation kills the driver and every Dask process it started.
            start_new_session=True,
        )
        log.info("EOPF run %s started (pid %d) in %s", run_id, proc.pid, workdir)
        monitor.progress.pid = proc.pid
        assert proc.stdout is not None
        pump = asyncio.create_task(monitor.pump(proc.stdout))
        try:
            while True:
                activity.heartbeat(monitor.poll().model_dump())
                try:
                    await asyncio.wait_for(asyncio.shield(proc.wait()), self._settings.heartbeat_s)
                    break
                except TimeoutError:
                    continue
        except BaseException:
            # Cancellation (or a worker shutdown): nothing of the run may outlive the activity.
            log.warning("EOPF run %s interrupted: stopping its process group %d", run_id, proc.pid)
            await asyncio.shield(_stop_group(proc, self._settings.kill_grace_s))
            raise
        finally:
            _kill_leftovers(proc.pid)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pump, 5)
            monitor.poll()

        duration = round(time.monotonic() - started, 2)
        activity.heartbeat(monitor.progress.model_dump())  # the final state, teardown included
        if proc.returncode != 0:
            tail = _last_chars(self._scrub("\n".join(monitor.tail)), TAIL_CHARS)
            reason = self._scrub(monitor.failure_reason())
            raise ProcessorFailedError(run_id, int(proc.returncode or -1), reason, tail)
        status = str((monitor.report or {}).get("status", "completed"))
        log.info("EOPF run %s %s in %.1f s", run_id, status, duration)
        return RunProcessorResult(
            status=status,
            written_products=monitor.written_products(),
            duration_s=duration,
            trace_id=monitor.progress.trace_id,
        )
