"""One trace covers client → workflow → child → activities → our station/S3/catalog spans; no secret in it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client

from rs_ondemand.config import Settings
from rs_ondemand.models.staging import CadipStagingInput
from rs_ondemand.workflows.cadip_staging import OnDemandCadipStaging
from rs_ondemand.workflows.dpr_processing import DprProcessing
from tests.support.sample_requests import demo_request, stage_sample_session


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # the interceptors' and our tracers are proxies: they follow it
    yield exporter


def assert_one_trace(finished: Sequence[ReadableSpan], start_name: str, *names: str) -> int:
    """Every span of `names` is in the trace the client's `start_name` span opened; returns that trace id."""
    (start,) = [s for s in finished if s.name == start_name]
    trace_id = start.context.trace_id
    in_trace = {s.name for s in finished if s.context.trace_id == trace_id}
    for name in names:
        assert name in in_trace, f"{name} missing from the request's trace: {sorted(in_trace)}"
    return trace_id


async def test_one_trace_covers_a_request_end_to_end(
    spans: InMemorySpanExporter, client: Client, task_queue: str, settings: Settings, collection: str
) -> None:
    request = CadipStagingInput.for_session("erin", "S1A_20241114143038056552", collection)
    workflow_id = f"test-trace-{uuid.uuid4()}"
    spans.clear()
    await client.execute_workflow(OnDemandCadipStaging.run, request, id=workflow_id, task_queue=task_queue)

    finished = spans.get_finished_spans()
    assert_one_trace(
        finished,
        "StartWorkflow:OnDemandCadipStaging",
        "RunWorkflow:OnDemandCadipStaging",
        "StartChildWorkflow:Staging",
        "RunWorkflow:Staging",
        "RunActivity:search_station",
        "station.search",
        "RunActivity:transfer_batch",  # the session's chunks are small files: they go in batches
        "station.batch_to_s3",
        "RunWorkflow:CollectionPublisher",
        "RunActivity:publish_staged_items",
        "catalog.publish",
    )

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
    await stage_sample_session(client, task_queue, "erin", collection)
    request = demo_request("erin", collection)
    spans.clear()
    result = await client.execute_workflow(
        DprProcessing.run, request, id=f"test-trace-{uuid.uuid4()}", task_queue=task_queue
    )

    trace_id = assert_one_trace(
        spans.get_finished_spans(),
        "StartWorkflow:DprProcessing",
        "RunWorkflow:DprProcessing",
        "RunActivity:plan_processing",
        "StartChildWorkflow:ProcessingUnit",
        "RunWorkflow:ProcessingUnit",
        "RunActivity:search_station",
        "station.search",
        "RunActivity:prepare_payload",
        "RunActivity:run_processor",
        "RunActivity:publish_products",
    )
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
