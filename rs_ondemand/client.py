"""The Temporal client every process uses: one place for the data converter and interceptors."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter

from rs_ondemand.config import TemporalSettings


async def connect(settings: TemporalSettings) -> Client:
    # The tracing interceptor makes one trace of client → workflow → activities (workers built on this client
    # inherit it); without a configured exporter its spans are no-ops.
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
        interceptors=[TracingInterceptor()],
    )


def ui_link(settings: TemporalSettings, workflow_id: str) -> str | None:
    """Link to a workflow in the Temporal Web UI, if its URL is known."""
    if not settings.ui_url:
        return None
    from urllib.parse import quote

    return f"{settings.ui_url.rstrip('/')}/namespaces/{settings.namespace}/workflows/{quote(workflow_id, safe='')}"
