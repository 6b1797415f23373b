"""EOPF context manager factory: the Dask cluster of a dask-gateway chosen by its `cluster_name` label, as RS does."""

from __future__ import annotations

from typing import Any


def newest_cluster_with_label(reports: list[Any], label: str) -> str | None:
    """Name of the newest running gateway cluster whose `cluster_name` option is `label` (rs-dpr-service's rule)."""
    matching = [
        report
        for report in reports
        if (report.options or {}).get("cluster_name") == label and getattr(report.status, "name", "") == "RUNNING"
    ]
    matching.sort(key=lambda report: report.start_time or 0, reverse=True)
    return matching[0].name if matching else None


def gateway_auth(auth: dict[str, Any]) -> Any:
    """The dask-gateway authenticator described by an EOPF-style `auth` block (None: the gateway's default)."""
    from dask_gateway.auth import BasicAuth, JupyterHubAuth

    kind = auth.get("type")
    if kind is None:
        return None
    if kind == "basic":
        return BasicAuth(username=auth.get("username"), password=auth.get("password"))
    if kind == "jupyterhub":
        return JupyterHubAuth(api_token=auth.get("api_token"))
    raise ValueError(f"unknown dask-gateway auth type {kind!r}: use basic or jupyterhub")


def labelled_gateway_cluster(
    *,
    address: str,
    cluster_label: str,
    cluster_instance: str | None = None,
    auth: dict[str, Any] | None = None,
    **dask_context_parameters: Any,
) -> Any:
    """An EOPF `DaskContext` on the gateway cluster labelled `cluster_label` (or exactly `cluster_instance`).

    Declared in the payload's `context_managers` instead of EOPF's own `DaskContext`, because EOPF only
    reuses a gateway cluster by its instance name, while RS requests name a cluster by its label. The lookup
    happens here, at run time, so the payload stays valid while clusters come and go.

    Args:
        address: the gateway's public URL (what `dask_gateway.Gateway(address=...)` takes).
        cluster_label: value of the clusters' `cluster_name` option, e.g. "dask-l0".
        cluster_instance: a precise cluster name, which wins over the label when given.
        auth: `{type: basic, username, password}` or `{type: jupyterhub, api_token}`; secrets arrive here already
            resolved by EOPF from `${VAR}` placeholders, never written in the payload.
        dask_context_parameters: other `DaskContext` parameters (`client_config`, `wait_for_workers`...).
    """
    from dask_gateway import Gateway
    from eopf.dask_utils.dask_context_manager import DaskContext

    name = cluster_instance
    if name is None:
        with Gateway(address=address, auth=gateway_auth(auth or {})) as gateway:
            name = newest_cluster_with_label(gateway.list_clusters(), cluster_label)
        if name is None:
            raise ValueError(f"no running dask-gateway cluster labelled {cluster_label!r} at {address}")
    cluster_config = {"address": address, "reuse_cluster": name, "auth": dict(auth or {})}
    return DaskContext("gateway", cluster_config=cluster_config, **dask_context_parameters)
