"""Joins the EOPF run to the orchestrator's trace: imported first (payload `external_modules`), it makes the W3C
`TRACEPARENT` the worker passes the current OpenTelemetry context, so EOPF's own spans (`eopf.triggering.workflow`,
when `triggering__opentelemetry_enabled`) are children of the `RunActivity:run_processor` span."""

from __future__ import annotations

import os

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


def join_parent_trace() -> str | None:
    """Attach the context of `$TRACEPARENT`; returns its trace id (32 hex digits), None without a valid one."""
    traceparent = os.environ.get("TRACEPARENT")
    if not traceparent:
        return None
    parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    span_context = trace.get_current_span(parent).get_span_context()
    if not span_context.is_valid:
        return None
    context.attach(parent)
    return format(span_context.trace_id, "032x")


def current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


JOINED_TRACE_ID = join_parent_trace()
