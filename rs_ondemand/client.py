"""The Temporal client every process uses: one place for the data converter and interceptors."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from pydantic import SecretStr
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client, TLSConfig
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


class TemporalConnectionError(Exception):
    """Temporal cannot be reached, or refuses us: one line that names the server, the security used and why."""


def _pem(settings: TemporalSettings, what: str) -> bytes | None:
    """One piece of TLS material from its `_PATH` or `_DATA` setting (not both), checked to be PEM."""
    path: Path | None = getattr(settings, f"tls_{what}_path")
    data: str | SecretStr | None = getattr(settings, f"tls_{what}_data")
    name = f"TEMPORAL_TLS_{what.upper()}"
    if path is not None and data is not None:
        raise TemporalConnectionError(f"set {name}_PATH or {name}_DATA, not both")
    if path is not None:
        try:
            pem, name = path.read_bytes(), f"{name}_PATH ({path})"
        except OSError as err:
            raise TemporalConnectionError(f"{name}_PATH: cannot read {path}: {err.strerror}") from None
    elif data is not None:
        pem, name = (data.get_secret_value() if isinstance(data, SecretStr) else data).encode(), f"{name}_DATA"
    else:
        return None
    if b"-----BEGIN " not in pem:
        raise TemporalConnectionError(f"{name} is not PEM (no '-----BEGIN' line)")
    return pem


def tls_config(settings: TemporalSettings) -> TLSConfig | bool:
    """What `Client.connect` takes as `tls`, from the TEMPORAL_TLS* settings and the API key."""
    ca, cert, key = (_pem(settings, what) for what in ("server_ca_cert", "client_cert", "client_key"))
    if (cert is None) != (key is None):
        missing = "TEMPORAL_TLS_CLIENT_KEY" if key is None else "TEMPORAL_TLS_CLIENT_CERT"
        raise TemporalConnectionError(f"mTLS needs the client certificate and its key: set {missing}_PATH or _DATA")
    material = ca is not None or cert is not None or settings.tls_server_name is not None
    if settings.tls is False:
        if material or settings.api_key is not None:
            raise TemporalConnectionError("TEMPORAL_TLS=false, but TLS settings or an API key are set")
        return False
    if not (settings.tls or material or settings.api_key is not None):
        return False
    if not material:
        return True  # the system's CAs, the address's host name: Temporal Cloud
    return TLSConfig(server_root_ca_cert=ca, domain=settings.tls_server_name, client_cert=cert, client_private_key=key)


def security(settings: TemporalSettings) -> str:
    """How we authenticate, for messages: plaintext, TLS, mTLS, and/or an API key (never its value)."""
    tls = tls_config(settings)
    kind = "plaintext" if tls is False else "mTLS" if isinstance(tls, TLSConfig) and tls.client_cert else "TLS"
    return f"{kind} + API key" if settings.api_key is not None else kind


# Core's connection errors nest tonic's, hyper's and rustls's messages: what each one means for an operator.
_HINTS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"UnknownIssuer|CERTIFICATE_VERIFY_FAILED"),
        "the server's certificate is not signed by a CA we "
        "trust (give its CA in TEMPORAL_TLS_SERVER_CA_CERT_PATH or _DATA)",
    ),
    (
        re.compile(r"NotValidForName"),
        "the server's certificate is not valid for this host name (set TEMPORAL_TLS_SERVER_NAME to a name it carries)",
    ),
    (
        re.compile(r"InvalidContentType|WRONG_VERSION_NUMBER|InvalidMessage"),
        "the server does not speak TLS (unset the TEMPORAL_TLS* settings, or set TEMPORAL_TLS=false)",
    ),
    (
        re.compile(r"Unauthenticated|PermissionDenied"),
        "the server refused our credentials (check TEMPORAL_API_KEY, or the client certificate)",
    ),
    (re.compile(r"ConnectionRefused|Connection refused"), "nothing listens there (check TEMPORAL_ADDRESS)"),
    (
        re.compile(r"dns error|failed to lookup address|Name or service not known"),
        "the host name does not resolve (check TEMPORAL_ADDRESS)",
    ),
]
# The server hung up once connected: a TLS server refusing our client certificate (TLS 1.3 checks it after the
# handshake), or a plaintext client talking to a TLS server. Which message core gives depends on timing.
_HUNG_UP = re.compile(r"Cancelled|transport error|connection closed|BrokenPipe|broken pipe|ConnectionReset")


def _reason(err: BaseException, tls: TLSConfig | bool) -> str:
    """The meaning of a core connection error, then its gist (code and message), on one line."""
    text = " ".join(str(err).split()).removeprefix("Failed client connect: ")
    gist = re.search(r'code: (\w+), message: "([^"]*)"', text)
    detail = f"{gist[1]}: {gist[2]}" if gist else re.sub(r"\w+::|\w+\(|\)|\{|\}", " ", text)
    detail = " ".join(detail.split())[:200]
    hint = next((hint for pattern, hint in _HINTS if pattern.search(text)), None)
    if hint is None and _HUNG_UP.search(text):
        if tls is False:
            hint = "the server hung up: does it require TLS (TEMPORAL_TLS=true, or a TLS setting)?"
        elif isinstance(tls, TLSConfig) and tls.client_cert:
            hint = "the server hung up after the TLS handshake: it does not accept our client certificate"
        else:
            hint = (
                "the server hung up after the TLS handshake: it requires a client certificate (mTLS: "
                "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH)"
            )
    return f"{hint} [{detail}]" if hint else detail or type(err).__name__


async def connect(settings: TemporalSettings) -> Client:
    """A client of the configured namespace, or a TemporalConnectionError that says why not."""
    tls = tls_config(settings)
    try:
        # The tracing interceptor makes one trace of client → workflow → activities (workers built on this
        # client inherit it); without a configured exporter its spans are no-ops.
        return await Client.connect(
            settings.address,
            namespace=settings.namespace,
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            tls=tls,
            data_converter=DATA_CONVERTER,
            interceptors=[TracingInterceptor()],
        )
    except RuntimeError as err:
        raise connection_error(settings, err, "cannot connect to") from err


def connection_error(settings: TemporalSettings, err: BaseException, what: str) -> TemporalConnectionError:
    """`err` of a call to Temporal as one line: `what` (e.g. "cannot connect to"), where, how, and why."""
    where = f"Temporal at {settings.address} (namespace {settings.namespace}, {security(settings)})"
    return TemporalConnectionError(f"{what} {where}: {_reason(err, tls_config(settings))}")


def ui_link(settings: TemporalSettings, workflow_id: str) -> str | None:
    """Link to a workflow in the Temporal Web UI, if its URL is known."""
    if not settings.ui_url:
        return None
    from urllib.parse import quote

    return f"{settings.ui_url.rstrip('/')}/namespaces/{settings.namespace}/workflows/{quote(workflow_id, safe='')}"
