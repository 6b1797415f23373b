"""OpenTelemetry: the exporter chosen by configuration, and the tracer our activities use for their own spans."""

from __future__ import annotations

from opentelemetry import trace

from rs_ondemand.config import TelemetrySettings

tracer = trace.get_tracer("rs_ondemand")
"""Spans around station, S3 and catalog calls; they join the Temporal spans of the same trace."""

_configured = False


def configure_tracing(settings: TelemetrySettings) -> bool:
    """Install an SDK tracer provider with the configured exporter (once per process).

    `none` (the default) keeps OpenTelemetry's no-op API: nothing is recorded. `console` prints spans; `otlp` (or
    any OTEL_EXPORTER_OTLP_ENDPOINT) sends them over OTLP/HTTP to a collector. Returns whether one was installed.
    """
    global _configured
    exporter_name = settings.traces_exporter
    if exporter_name == "none" and settings.exporter_otlp_endpoint:
        exporter_name = "otlp"
    if _configured or exporter_name == "none":
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # reads OTEL_EXPORTER_OTLP_ENDPOINT / _HEADERS itself
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _configured = True
    return True
