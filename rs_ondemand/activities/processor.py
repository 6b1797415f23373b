"""DPR processor activities: the plan of a request, its EOPF payload in S3, the EOPF run, and the cleanup of a
run's outputs. How an EOPF process is started, watched and stopped is `eopf_process`'s business."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import yaml
from temporalio import activity

from rs_ondemand.activities.catalog_client import CatalogClient
from rs_ondemand.activities.eopf_env import EopfProcessors
from rs_ondemand.activities.eopf_monitor import PROGRESS_NAME
from rs_ondemand.activities.eopf_process import (
    PAYLOAD_NAME,
    Starter,
    cold_starter,
    inherited_environment,
    kill_earlier_attempts,
    new_run_folder,
    parent_death_wrapper,
    remove_abandoned_run_folders,
    run_eopf,
    traceparent,
)
from rs_ondemand.activities.eopf_runner import WarmRunner
from rs_ondemand.activities.storage import ObjectStore, item_prefix, split_s3_url
from rs_ondemand.config import DaskCluster, ProcessorSettings, S3Settings
from rs_ondemand.dpr.payload import (
    build_payload,
    payload_spec,
    payload_yaml,
    run_output_prefix,
    with_dask_context,
    with_progress_callback,
    with_tracing,
)
from rs_ondemand.dpr.plan import input_properties_needed, plan_request
from rs_ondemand.dpr.registry import get_tasktable, tasktable_of
from rs_ondemand.errors import ConfigurationError, InvalidInputError, OnDemandError
from rs_ondemand.models.dpr import (
    AdfItem,
    DprProcessIn,
    PreparedPayload,
    PreparePayloadInput,
    ProcessingPlan,
)
from rs_ondemand.models.processor_run import (
    RunProcessorInput,
    RunProcessorResult,
    S3StorageRef,
    WrittenProduct,
)
from rs_ondemand.names import safe_segment

log = logging.getLogger(__name__)

TAIL_CHARS = 1500
"""The end of EOPF's output kept in a failure (error text is capped at 2000 characters in workflow history)."""


class ProcessorFailedError(OnDemandError):
    """The EOPF run failed. Retryable: an operator may fix the cause (data, cluster) and retry the step."""

    def __init__(self, run_id: str, returncode: int, reason: str, output_tail: str) -> None:
        super().__init__(
            f"EOPF run {run_id!r} failed (exit code {returncode}): {reason}\n--- last EOPF output ---\n{output_tail}"
        )
        self.returncode = returncode


class ProcessorRefusedError(InvalidInputError):
    """EOPF refused the payload before running any unit (a unit module it cannot import, an input or ADF a unit
    needs and the step does not give, a cycle in the chain...): the same request is refused again, so it fails at
    once instead of waiting for an operator."""

    def __init__(self, run_id: str, refusal: str) -> None:
        super().__init__(f"EOPF refused the payload of run {run_id!r}: {refusal}")


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


class ProcessorActivities:
    """The DPR processor: payload files in S3 and EOPF runs."""

    def __init__(
        self,
        store: ObjectStore,
        settings: ProcessorSettings,
        catalog: CatalogClient | None = None,
        processors: EopfProcessors | None = None,
        runner: WarmRunner | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._catalog = catalog
        """Where the plan reads the input products' properties and the items of request-supplied ADFs."""
        self._processors = processors
        """The task tables of the processors of the EOPF environment; None: the shipped files only."""
        if runner is None and settings.warm_runner:
            runner = warm_runner(settings.executable)
        self._runner = runner
        """Where runs are forked from (`RS_EOPF_WARM_RUNNER`); None: each run is a new `eopf` process."""

    async def aclose(self) -> None:
        """Stop the warm runner, if it was started (the worker stops)."""
        if self._runner is not None:
            await self._runner.aclose()

    @property
    def s3(self) -> S3Settings:
        return self._store.settings

    @activity.defn
    async def plan_processing(self, request: DprProcessIn) -> ProcessingPlan:
        """Read the processor's task table (the request's own, else the registry's: a shipped file, or the one the
        processor serves) and apply the request to it.

        Raises:
            TaskTableError: unknown processor, malformed table, or a request that does not fit it (non-retryable).
        """
        label, _ = self._cluster(request.dask_cluster_label)  # an unknown label fails now, before any staging
        if request.tasktable is not None:
            tasktable = request.tasktable
        elif self._processors is not None:
            tasktable = tasktable_of(await self._processors.catalog(), request.processor_name)
        else:
            tasktable = get_tasktable(request.processor_name)
        plan = await plan_with_catalog(self._catalog, request, tasktable)
        if label != request.dask_cluster_label:
            plan.warnings.append(
                f"Dask cluster label {request.dask_cluster_label!r} is not one of this worker's: runs on {label!r}"
            )
        return plan

    def _cluster(self, label: str) -> tuple[str, DaskCluster]:
        """The label a request runs on and its cluster: its own, else the worker's default label."""
        clusters, default = self._settings.dask_clusters, self._settings.default_dask_cluster
        if label in clusters:
            return label, clusters[label]
        if default is not None:
            return default, clusters[default]
        known = ", ".join(sorted(clusters)) or "<none>"
        raise InvalidInputError(
            f"unknown Dask cluster label {label!r}; known: {known} (and no default: RS_EOPF_DEFAULT_DASK_CLUSTER)"
        )

    @activity.defn
    async def prepare_payload(self, request: PreparePayloadInput) -> PreparedPayload:
        """Build the run's EOPF payload from the resolved units and upload it to its `s3_payload_file`."""
        run, bucket, owner = safe_segment(request.run_id), self.s3.rs_bucket, request.owner_id
        spec = payload_spec(
            request.plan,
            request.resolutions,
            run_id=request.run_id,
            output_folder=lambda collection: run_output_prefix(bucket, owner, collection, run),
            adf_folder=lambda item: staged_folder(bucket, owner, item),
            storage=S3StorageRef(endpoint_url=self.s3.s3_endpoint_url, region_name=self.s3.aws_default_region),
            dry_run=request.dry_run,
        )
        text = payload_yaml(build_payload(spec))
        self._refuse_secret_values(text)
        target = request.s3_payload_file or f"s3://{self.s3.rs_work_bucket}/dpr/{run}/{PAYLOAD_NAME}"
        await self._store.put_text(*split_s3_url(target), text, content_type="application/yaml")
        return PreparedPayload(
            s3_payload_file=target, payload_yaml=text, output_prefixes=sorted(set(spec.output_paths.values()))
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
        await self._store.delete(*split_s3_url(s3_payload_file))

    @activity.defn
    async def run_processor(self, request: RunProcessorInput) -> RunProcessorResult:
        """Run the EOPF trigger on the request's payload and cluster, heartbeating `ProcessorProgress`.

        Raises:
            ProcessorRefusedError: EOPF refused the payload before running any unit (non-retryable).
            ProcessorFailedError: EOPF exited non-zero; the message carries its error and last output lines.
            InvalidInputError: unknown Dask cluster label, unreadable payload, or a payload holding a secret.
            EopfNotInstalledError: the EOPF environment is missing.
        """
        executable = self._settings.executable
        if not os.access(executable, os.X_OK):
            raise EopfNotInstalledError(executable)
        _, cluster = self._cluster(request.dask_cluster_label)
        if request.payload_yaml is not None:
            text = request.payload_yaml
        else:
            text = await self._store.get_text(*split_s3_url(str(request.s3_payload_file)))
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
        """The EOPF process's environment: the basics of ours, plus the values the payload's `${VAR}` name."""
        env = inherited_environment()
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
        if parent := traceparent():
            env["TRACEPARENT"] = parent
        if self._settings.otlp_endpoint:
            # EOPF 3.0 exports its spans over OTLP/gRPC only (the worker's own exporter speaks OTLP/HTTP).
            env |= {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_ENDPOINT": self._settings.otlp_endpoint,
                "OTEL_SERVICE_NAME": "eopf",
            }
        return env

    async def _run(self, run_id: str, workdir: Path) -> RunProcessorResult:
        settings = self._settings
        start: Starter = cold_starter(settings.executable) if self._runner is None else self._runner.start_run
        outcome = await run_eopf(
            start,
            run_id,
            workdir,
            self._environment(),
            heartbeat=lambda progress: activity.heartbeat(progress.model_dump()),
            heartbeat_s=settings.heartbeat_s,
            kill_grace_s=settings.kill_grace_s,
            tail_lines=settings.output_tail_lines,
        )
        monitor = outcome.monitor
        if outcome.returncode != 0 and (refusal := monitor.refusal()) is not None:
            raise ProcessorRefusedError(run_id, self._scrub(_after_error_prefix(refusal)))
        if outcome.returncode != 0:
            tail = _last_chars(self._scrub("\n".join(monitor.tail)), TAIL_CHARS)
            reason = self._scrub(monitor.failure_reason())
            raise ProcessorFailedError(run_id, outcome.returncode, reason, tail)
        status = str((monitor.report or {}).get("status", "completed"))
        log.info("EOPF run %s %s in %.1f s", run_id, status, outcome.duration_s)
        return RunProcessorResult(
            status=status,
            written_products=monitor.written_products(),
            duration_s=outcome.duration_s,
            trace_id=monitor.progress.trace_id,
        )


def warm_runner(executable: Path) -> WarmRunner:
    """The runner of the EOPF environment of `executable`, started with the worker's environment for EOPF and
    dying with the worker (see `eopf_runner`)."""
    return WarmRunner(executable.with_name("python"), inherited_environment(), parent_death_wrapper())


async def plan_with_catalog(
    catalog: CatalogClient | None, request: DprProcessIn, tasktable: dict[str, Any]
) -> ProcessingPlan:
    """The plan of `request`, with what only the catalog knows: the properties of the input products the task
    table's `{<input>.<property>}` placeholders read (an item's `id` counts as one), and the files of the ADF
    items the request supplies.

    Raises:
        InvalidInputError: an input product or supplied ADF item is not in the catalog (and what `plan_request`
            raises).
    """

    async def item(what: str, item_id: str, collection: str) -> dict[str, Any]:
        if catalog is None:
            raise ConfigurationError(f"{what}: no catalog to read item {item_id!r} from")
        found = await catalog.items(collection, [item_id])
        if not found:
            raise InvalidInputError(f"{what}: item {item_id!r} is not in catalog collection {collection!r}")
        return found[0]

    properties = {}
    for name, (item_id, collection) in input_properties_needed(request, tasktable).items():
        found = await item(f"input product {name!r}", item_id, collection)
        properties[name] = {"id": found.get("id")} | dict(found.get("properties") or {})
    plan = plan_request(request, tasktable, properties)
    for unit in plan.unit_plans:
        for adf in unit.adfs:
            if adf.supplied is not None and adf.supplied.id:
                found = await item(f"ADF {adf.name!r}", adf.supplied.id, adf.supplied.collection)
                adf.supplied.hrefs = sorted(asset["href"] for asset in found.get("assets", {}).values())
    return plan


def _after_error_prefix(line: str) -> str:
    """EOPF's message without the logging prefix or click's `Error: `."""
    for marker in (":: ", "Error: "):
        if marker in line:
            line = line.split(marker, 1)[1]
    return line.strip()


def _last_chars(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]
