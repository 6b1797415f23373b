"""Traces in docker-compose.yml: the worker and EOPF export OTLP to the collector, whose configuration is whole
and exports to Jaeger (static checks: no engine, no stack)."""

from __future__ import annotations

from rs_ondemand.config import Settings, TelemetrySettings
from tests.support.compose import (
    COLLECTOR,
    JAEGER,
    collector_config,
    endpoint,
    listening_ports,
    otlp_receiver_port,
    services,
)


def test_worker_exports_otlp_http_to_the_collector(worker_settings: Settings) -> None:
    telemetry: TelemetrySettings = worker_settings.telemetry
    assert telemetry.traces_exporter == "otlp" and telemetry.exporter_otlp_endpoint
    host, port = endpoint(telemetry.exporter_otlp_endpoint)
    assert host == COLLECTOR and port == otlp_receiver_port("http") == 4318
    assert port in listening_ports(COLLECTOR)


def test_eopf_exports_otlp_grpc_to_the_collector(worker_settings: Settings) -> None:
    assert worker_settings.processor.otlp_endpoint
    host, port = endpoint(worker_settings.processor.otlp_endpoint)
    assert host == COLLECTOR and port == otlp_receiver_port("grpc") == 4317
    assert port in listening_ports(COLLECTOR)


def test_collector_config_pipelines_use_defined_components() -> None:
    config = collector_config()
    pipelines = config["service"]["pipelines"]
    assert "traces" in pipelines
    for kind in ("receivers", "processors", "exporters"):
        defined = set(config.get(kind) or {})
        used = {name for pipeline in pipelines.values() for name in pipeline.get(kind, [])}
        assert used <= defined, f"pipelines use undefined {kind}: {sorted(used - defined)}"
        assert defined <= used, f"{kind} defined but in no pipeline: {sorted(defined - used)}"
    assert set(config["service"].get("extensions", [])) == set(config.get("extensions") or {})
    assert pipelines["traces"]["receivers"] == ["otlp"]


def test_collector_listens_where_compose_says() -> None:
    config = collector_config()
    ports = {otlp_receiver_port("grpc"), otlp_receiver_port("http")}
    ports |= {endpoint(ext["endpoint"])[1] for ext in (config.get("extensions") or {}).values() if "endpoint" in ext}
    assert ports == listening_ports(COLLECTOR)
    for protocol in ("grpc", "http"):  # reachable from the other containers, not only from inside its own
        assert endpoint(config["receivers"]["otlp"]["protocols"][protocol]["endpoint"])[0] == "0.0.0.0"


def test_collector_exports_traces_to_jaeger() -> None:
    config = collector_config()
    for name in config["service"]["pipelines"]["traces"]["exporters"]:
        assert name.split("/")[0] == "otlp", f"{name}: Jaeger v2 takes OTLP"
        host, port = endpoint(config["exporters"][name]["endpoint"])
        assert host == JAEGER and port in listening_ports(JAEGER)
    assert services()[COLLECTOR]["depends_on"][JAEGER]["condition"] == "service_healthy"
    assert 16686 in listening_ports(JAEGER), "the Jaeger UI"
