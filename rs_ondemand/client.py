"""The Temporal client every process uses: one place for the data converter and interceptors."""

from __future__ import annotations

import dataclasses

from temporalio.api.failure.v1 import Failure
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverter, PayloadConverter

from rs_ondemand.config import TemporalSettings

STACK_TRACE_CHARS = 600
"""The innermost frames of each stack trace kept in a failure sent to Temporal."""


class CompactFailureConverter(DefaultFailureConverter):
    """Failures as Temporal's default converter makes them, with every stack trace of the chain cut to its
    innermost frames.

    The server keeps a retrying activity's last failure (what `describe` and the UI show an operator) only below
    4 KB, else it shows "Failure exceeds size limit." instead: a station or catalog connection error with httpx's
    frames alone is 4.5 KB. The messages say what went wrong; the whole traceback is in the worker's log.
    """

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure) -> None:
        super().to_failure(exception, payload_converter, failure)  # calls us again for each cause
        if len(failure.stack_trace) > STACK_TRACE_CHARS:
            innermost = failure.stack_trace[-STACK_TRACE_CHARS:].split("\n", 1)[-1]
            failure.stack_trace = f"(outer frames left out: see the worker's log)\n{innermost}"


DATA_CONVERTER: DataConverter = dataclasses.replace(
    pydantic_data_converter, failure_converter_class=CompactFailureConverter
)
"""Pydantic payloads (contracts are pydantic models) and compact failures; clients, workers and replays use it."""


async def connect(settings: TemporalSettings) -> Client:
    # The tracing interceptor makes one trace of client → workflow → activities (workers built on this client
    # inherit it); without a configured exporter its spans are no-ops.
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        data_converter=DATA_CONVERTER,
        interceptors=[TracingInterceptor()],
    )


def ui_link(settings: TemporalSettings, workflow_id: str) -> str | None:
    """Link to a workflow in the Temporal Web UI, if its URL is known."""
    if not settings.ui_url:
        return None
    from urllib.parse import quote

    return f"{settings.ui_url.rstrip('/')}/namespaces/{settings.namespace}/workflows/{quote(workflow_id, safe='')}"
