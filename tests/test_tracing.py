"""One trace covers client → workflow → child → activities → our station/S3/catalog spans; no secret in it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client

from rs_ondemand.config import Settings
from rs_ondemand.models.processing import DprProcessIn
from rs_ondemand.models.staging import CadipStagingInput
from rs_ondemand.workflows.cadip_staging import OnDemandCadipStaging
from rs_ondemand.workflows.dpr_processing import DprProcessing


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # the interceptors' and our tracers are proxies: they follow it
    yield exporter


async def test_one_trace_covers_a_request_end_to_end(
    spans: InMemorySpanExporter, client: Client, task_queue: str, settings: Settings, collection: str
) -> None:
    request = CadipStagingInput.model_validate(
        {
            "env": {"owner_id": "erin"},
            "cadip_collection_identifier": "cadip",
            "session_identifier": "S1A_20241114143038056552",
            "catalog_collection_identifier": collection,
        }
    )
    workflow_id = f"test-trace-{uuid.uuid4()}"
    spans.clear()
    await client.execute_workflow(OnDemandCadipStaging.run, request, id=workflow_id, task_queue=task_queue)

    finished = spans.get_finished_spans()
    (start,) = [s for s in finished if s.name == "StartWorkflow:OnDemandCadipStaging"]
    trace_id = start.context.trace_id
    in_trace = {s.name for s in finished if s.context.trace_id == trace_id}
    for name in (
        "RunWorkflow:OnDemandCadipStaging",
        "StartChildWorkflow:Staging",
        "RunWorkflow:Staging",
        "RunActivity:search_station",
        "station.search",
        "RunActivity:stream_asset",
        "station.download_to_s3",
        "RunActivity:publish_staged_items",
        "catalog.publish",
    ):
        assert name in in_trace, f"{name} missing from the request's trace: {sorted(in_trace)}"

    secrets = [
        s.get_secret_value()
        for s in (settings.s3.aws_secret_access_key, settings.cadip.password, settings.cadip.client_secret)
        if s is not None
    ]
    for span in finished:
        text = repr(dict(span.attributes or {})) + repr([dict(e.attributes or {}) for e in span.events])
        assert not any(secret in text for secret in secrets), span.name


async def test_the_eopf_process_joins_the_request_trace(
    spans: InMemorySpanExporter, client: Client, task_queue: str, collection: str
) -> None:
    """Client → DprProcessing → ProcessingUnit → activities → the EOPF process and publication: EOPF gets
    the `run_processor` span as TRACEPARENT, and its events carry that trace id."""
    session = "S1A_20241114143038056552"
    staging = CadipStagingInput.model_validate(
        {
            "env": {"owner_id": "erin"},
            "cadip_collection_identifier": "cadip",
            "session_identifier": session,
            "catalog_collection_identifier": collection,
        }
    )
    await client.execute_workflow(
        OnDemandCadipStaging.run, staging, id=f"test-trace-{uuid.uuid4()}", task_queue=task_queue
    )
    request = DprProcessIn.model_validate(
        {
            "env": {"owner_id": "erin"},
            "processor_name": "demo",
            "dask_cluster_label": "local",
            "pipeline": "demo_full",
            "input_products": [{"CADU": [session, collection]}],
            "generated_product_to_collection_identifier": [{"DEMOL0": ["S01DEMOL0", f"{collection}-l0"]}],
            "auxiliary_product_to_collection_identifier": {"*": f"{collection}-aux"},
            "start_datetime": "2024-11-14T14:30:38.477Z",
            "end_datetime": "2024-11-14T14:33:22.662Z",
            "satellite": "sentinel-1a",
        }
    )
    spans.clear()
    result = await client.execute_workflow(
        DprProcessing.run, request, id=f"test-trace-{uuid.uuid4()}", task_queue=task_queue
    )

    finished = spans.get_finished_spans()
    (start,) = [s for s in finished if s.name == "StartWorkflow:DprProcessing"]
    trace_id = start.context.trace_id
    in_trace = {s.name for s in finished if s.context.trace_id == trace_id}
    for name in (
        "RunWorkflow:DprProcessing",
        "RunActivity:plan_processing",
        "StartChildWorkflow:ProcessingUnit",
        "RunWorkflow:ProcessingUnit",
        "RunActivity:search_station",
        "station.search",
        "RunActivity:prepare_payload",
        "RunActivity:run_processor",
        "RunActivity:publish_products",
    ):
        assert name in in_trace, f"{name} missing from the request's trace: {sorted(in_trace)}"
    assert result.processor_trace_id == format(trace_id, "032x")


def test_the_console_exporter_is_chosen_by_configuration() -> None:
    """OTEL_TRACES_EXPORTER=console prints our spans (in a fresh process: a tracer provider is set once)."""
    import subprocess
    import sys

    script = (
        "from rs_ondemand.config import TelemetrySettings\n"
        "from rs_ondemand.telemetry import configure_tracing, tracer\n"
        "from opentelemetry import trace\n"
        "assert configure_tracing(TelemetrySettings())\n"
        "with tracer.start_as_current_span('station.search'): pass\n"
        "trace.get_tracer_provider().shutdown()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"OTEL_TRACES_EXPORTER": "console", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert '"name": "station.search"' in done.stdout
    assert '"service.name": "rs-ondemand"' in done.stdout


def test_no_exporter_by_default_keeps_the_no_op_api() -> None:
    from rs_ondemand.config import TelemetrySettings
    from rs_ondemand.telemetry import configure_tracing

    assert configure_tracing(TelemetrySettings(traces_exporter="none", exporter_otlp_endpoint=None)) is False
