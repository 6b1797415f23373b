"""`rs-ondemand stations list|check`: the station registry as the worker sees it, and a login to each station."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

import typer

from rs_ondemand.config import Settings
from rs_ondemand.stations.registry import StationConfig, StationRegistry

stations_app = typer.Typer(
    no_args_is_help=True, help="The station registry (RS_STATIONS_FILE or CADIP_*/AUXIP_*/PRIP_*)."
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
PROBE = {"cadip": "Sessions", "auxip": "Products", "prip": "Products"}
"""The entity set an OData station is asked one entity of, to prove the login works."""


def _describe(registry: StationRegistry, station: StationConfig) -> dict[str, Any]:
    """What an operator may see of a station: everything but secret values."""
    return {
        "name": station.name,
        "kind": station.kind,
        "api": station.api,
        "url": station.url,
        "download_root": station.download_root,
        "auth": station.auth,
        "max_concurrent_downloads": station.max_concurrent_downloads,
        "max_requests_per_minute": station.max_requests_per_minute,
        "redirect_hosts": list(station.redirect_hosts),
        "collections": sorted(n for n, c in registry.collections.items() if c.station == station.name),
    }


@stations_app.command("list")
def list_stations(as_json: JsonOption = False) -> None:
    """Show every station and collection (no secret is ever shown)."""
    registry = Settings.load().station_registry()
    stations = [_describe(registry, s) for s in registry.stations.values()]
    collections = {name: c.model_dump(exclude_none=True) for name, c in registry.collections.items()}
    if as_json:
        body = {"source": registry.source, "stations": stations, "collections": collections}
        print(json.dumps(body | {"open_collections": registry.open_collections}, indent=2))
        return
    print(f"stations from {registry.source}")
    for s in stations:
        limits = f"{s['max_concurrent_downloads']} downloads" + (
            f", {s['max_requests_per_minute']}/min" if s["max_requests_per_minute"] else ""
        )
        print(f"  {s['name']:<12} {s['kind']:<6} {s['api']:<6} {s['url']}  auth={s['auth']}  {limits}")
    if registry.open_collections:
        print("collections: any the stations' STAC facades have")
    for name, c in collections.items():
        print(f"  collection {name} -> {c.pop('station')}" + (f" {c}" if c else ""))


async def _check(station: StationConfig) -> dict[str, Any]:
    """Log in (OAuth2 or API key) and ask for one thing; report reachability, auth and latency."""
    import httpx

    from rs_ondemand.activities.station_client import StationClient
    from rs_ondemand.errors import OnDemandError, StationAuthError, StationUnavailableError

    report: dict[str, Any] = {"name": station.name, "reachable": False, "auth_ok": False, "latency_ms": None}
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=station.timeout_s) as http:
        client = StationClient(station, http)
        try:
            if station.api == "odata":
                await client.get_json(f"{station.url.rstrip('/')}/{PROBE[station.kind]}", {"$top": "1"})
            else:
                response = await http.get(station.url, headers=await client.headers())
                if response.status_code in (401, 403):
                    raise StationAuthError(f"{station.name} refused us ({response.status_code})")
                if response.status_code != 200:
                    raise StationUnavailableError(f"{station.name} answered {response.status_code}")
                if station.token_url:
                    await client.token()  # the download side's login
            report |= {"reachable": True, "auth_ok": True}
        except StationAuthError as err:
            report |= {"reachable": True, "error": str(err)}
        except (OnDemandError, httpx.HTTPError) as err:
            report["error"] = str(err) or repr(err)
    report["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    return report


@stations_app.command("check")
def check_stations(as_json: JsonOption = False) -> None:
    """Log in to each station and report reachable / auth ok / latency; exit 1 if one fails."""
    registry = Settings.load().station_registry()

    async def all_checks() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(_check(s) for s in registry.stations.values())))

    reports = asyncio.run(all_checks())
    if as_json:
        print(json.dumps({"source": registry.source, "stations": reports}, indent=2))
    else:
        for r in reports:
            state = "ok" if r["auth_ok"] else ("auth FAILED" if r["reachable"] else "UNREACHABLE")
            print(f"{r['name']:<12} {state:<12} {r['latency_ms']:>8} ms" + (f"  {r['error']}" if "error" in r else ""))
    if not all(r["auth_ok"] for r in reports):
        raise SystemExit(1)
