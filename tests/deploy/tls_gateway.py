"""A TLS front for the Temporal dev server, for the connection tests (the dev server itself serves plaintext).

`temporal server start-dev` has no TLS options, so this gRPC server terminates TLS the way Temporal Cloud or a
TLS-configured cluster does (server certificate, optionally a required client certificate, optionally a bearer
API key) and relays every call, unchanged, to the dev server. Temporal's frontend calls are all unary (long polls
included), so one generic unary handler relays them all, with their metadata, deadline, status and trailers.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# gRPC's C core logs each refused handshake; the tests assert on what the clients say instead.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")
import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Metadata the relay must not copy: HTTP/2 pseudo-headers, gRPC's own, and the credential it checked.
HOP_BY_HOP = ("grpc-", ":")
DROPPED = {"authorization", "user-agent", "te", "content-type"}


@dataclass(frozen=True)
class Pem:
    cert: Path
    key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pem:
    pem = Pem(directory / f"{name}.pem", directory / f"{name}-key.pem")
    pem.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return pem


class Authority:
    """A throw-away certificate authority that issues server and client certificates into `directory`."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory, self.name, self.key = directory, name, _key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            self._builder(subject, self.key.public_key())
            .issuer_name(subject)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.pem = _write(directory, name, self.cert, self.key)

    @staticmethod
    def _builder(subject: x509.Name, public_key: Any) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )

    def issue(self, name: str, *, server: bool) -> Pem:
        key = _key()
        builder = (
            self._builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), key.public_key())
            .issuer_name(self.cert.subject)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        if server:
            names = [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return _write(self.directory, f"{self.name}-{name}", builder.sign(self.key, hashes.SHA256()), key)


class _Relay(grpc.GenericRpcHandler):
    def __init__(self, upstream: grpc.Channel, api_key: str | None) -> None:
        self.upstream, self.api_key = upstream, api_key

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = details.method
        call = self.upstream.unary_unary(method)  # bytes in, bytes out

        def relay(request: bytes, context: grpc.ServicerContext) -> bytes:
            metadata = tuple(context.invocation_metadata())
            if self.api_key is not None and dict(metadata).get("authorization") != f"Bearer {self.api_key}":
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong API key")
            forwarded = [(k, v) for k, v in metadata if k not in DROPPED and not k.startswith(HOP_BY_HOP)]
            remaining = context.time_remaining()
            try:
                response: bytes = call(request, metadata=forwarded, timeout=remaining)
            except grpc.RpcError as err:
                context.set_trailing_metadata(err.trailing_metadata() or ())  # type: ignore[attr-defined]
                context.abort(err.code(), err.details() or "")  # type: ignore[attr-defined]
            return response

        return grpc.unary_unary_rpc_method_handler(relay)


@contextmanager
def tls_gateway(
    upstream: str, server: Pem, *, client_ca: Pem | None = None, api_key: str | None = None
) -> Iterator[str]:
    """Serve TLS on a free loopback port, relaying to `upstream` (plaintext); yields `127.0.0.1:<port>`.

    `client_ca`: a client certificate signed by it is required (mTLS). `api_key`: `authorization: Bearer <key>`
    is required on every call.
    """
    credentials = grpc.ssl_server_credentials(
        [(server.key.read_bytes(), server.cert.read_bytes())],
        root_certificates=client_ca.cert.read_bytes() if client_ca else None,
        require_client_auth=client_ca is not None,
    )
    channel = grpc.insecure_channel(upstream)
    gateway = grpc.server(ThreadPoolExecutor(max_workers=64), handlers=[_Relay(channel, api_key)])
    port = gateway.add_secure_port("127.0.0.1:0", credentials)
    gateway.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        gateway.stop(grace=None)
        channel.close()
