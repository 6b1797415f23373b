"""The embedded stack's station registry (stations.yaml): the simulator's stations as the worker sees them."""

from __future__ import annotations

from typing import Any

import yaml

from rs_ondemand.stations.registry import DEFAULT_MAX_CONCURRENT_DOWNLOADS

STATIONS = ("cadip", "auxip", "prip")
STATIONS_FILE = "stations.yaml"
ICD_STATIONS: dict[str, dict[str, Any]] = {
    "ins": {"kind": "cadip", "stac": False, "expand_files": False, "checksums": False, "page_size": 10},
    "mti": {"kind": "cadip", "stac": False, "sizes_as_strings": True, "redirect_host": "localhost"},
}
"""Named ICD-only CADIP stations of the stack's simulator, beside the STAC-facade stations of each kind: one
lists files by session and gives no checksum, the other redirects downloads to a second host."""


def stations_yaml(root: str) -> str:
    """The stack's station registry: the facade stations and their collections, and the ICD-only CADIP stations
    (`s1_ins`, `s1_mti`...). Credentials are `${VAR}` references to the env file, never copied here."""

    def station(name: str, kind: str, api: str, prefix: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"kind": kind, "api": api}
        spec["url"] = f"{root}/{name}/stac" if api == "stac" else f"{root}/{name}"
        if api == "stac":
            spec["odata_url"] = f"{root}/{name}"
        spec["token_url"] = f"{root}/{name}/oauth2/token"
        keys = ("client_id", "client_secret", "username", "password")
        return spec | {key: "${" + f"{prefix}_{key.upper()}" + "}" for key in keys}

    stations = {kind: station(kind, kind, "stac", kind.upper()) for kind in STATIONS}
    for kind in STATIONS:  # the shorthand's limit variables still apply to the stack's facade stations
        variable = f"{kind.upper()}_MAX_CONCURRENT_DOWNLOADS"
        stations[kind]["max_concurrent_downloads"] = "${" + variable + f":-{DEFAULT_MAX_CONCURRENT_DOWNLOADS}}}"
    for name, profile in ICD_STATIONS.items():
        stations[name] = station(name, profile["kind"], "odata", "CADIP")
        if profile.get("redirect_host"):
            stations[name]["redirect_hosts"] = [profile["redirect_host"]]
    collections: dict[str, Any] = {}
    for kind in STATIONS:
        for suffix in ("", "_sentinel1", "_sentinel2", "_sentinel3"):
            collections[f"{kind}{suffix}"] = {"station": kind}
    for name in ICD_STATIONS:
        collections[name] = {"station": name}
        collections[f"s1_{name}"] = {"station": name, "satellites": ["S1A", "S1B", "S1C"]}
        collections[f"s2_{name}"] = {"station": name, "satellites": ["S2A", "S2B", "S2C"]}
    header = (
        "# rs-ondemand embedded stack: station registry (written by `rs-ondemand stack up`; see docs/stations.md)\n"
    )
    return header + yaml.safe_dump({"stations": stations, "collections": collections}, sort_keys=False)
