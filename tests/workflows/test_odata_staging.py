"""Staging from ICD OData stations named in a station registry, against the same data through a STAC facade.

The test's own simulator serves the facade stations `cadip`, `auxip`, `prip` and ICD-only stations with the
interfaces' variety (no Files expansion, no checksums, sizes as strings, nextLink paging, a redirect to a second
host); a worker of the test's own, with its own registry, stages into the session stack's S3 and catalog.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from rs_ondemand.activities._stac import open_stac_api
from rs_ondemand.activities.catalog_publish import CHECKSUM_ORIGIN
from rs_ondemand.config import Settings
from rs_ondemand.models.progress import Progress
from rs_ondemand.models.staging import (
    AuxipStagingInput,
    CadipStagingInput,
    CadipStagingResult,
    PripStagingInput,
    WindowStagingResult,
)
from rs_ondemand.names import AUXIP_STAGING, CADIP_STAGING, PRIP_STAGING, PROGRESS_QUERY
from rs_ondemand.stations.registry import StationConfig, StationRegistry
from rs_ondemand.worker import activities, running_workers
from rs_ondemand.workflows._failures import root_cause
from tests.support.simulator_server import RunningSimulator, run_simulator
from tests.support.stack import Simulator

OWNER = "olga"
SESSION = "S1A_20241114143038056552"
ICD_STATIONS = {
    "ins": {
        "kind": "cadip",
        "stac": False,
        "expand_files": False,
        "checksums": False,
        "sizes_as_strings": True,
        "page_size": 4,
        "redirect_host": "localhost",
    },
    "mti": {"kind": "cadip", "stac": False},
    "adgs": {"kind": "auxip", "stac": False, "page_size": 3, "checksums": False},
    "ips": {"kind": "prip", "stac": False, "page_size": 2, "sizes_as_strings": True},
}
LIMITS = {"ins": 2, "mti": 1}


@pytest.fixture(scope="module")
def stations(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    with run_simulator(tmp_path_factory.mktemp("odata"), stations=json.dumps(ICD_STATIONS)) as sim:
        yield sim


def registry_of(sim: RunningSimulator) -> StationRegistry:
    login = {
        "client_id": sim.credentials["client_id"],
        "client_secret": sim.credentials["client_secret"],
        "username": sim.credentials["username"],
        "password": sim.credentials["password"],
    }

    def station(name: str, kind: str, api: str, **extra: Any) -> StationConfig:
        url = f"{sim.url}/{name}/stac" if api == "stac" else f"{sim.url}/{name}"
        fields = {"odata_url": f"{sim.url}/{name}"} if api == "stac" else {}
        return StationConfig.model_validate(
            {"name": name, "kind": kind, "api": api, "url": url, "token_url": f"{sim.url}/{name}/oauth2/token"}
            | login
            | fields
            | extra
        )

    configs = [
        station("cadip", "cadip", "stac"),
        station("auxip", "auxip", "stac"),
        station("prip", "prip", "stac"),
        station("ins", "cadip", "odata", max_concurrent_downloads=LIMITS["ins"], redirect_hosts=["localhost"]),
        station("mti", "cadip", "odata", max_concurrent_downloads=LIMITS["mti"]),
        station("adgs", "auxip", "odata"),
        station("ips", "prip", "odata"),
    ]
    collections = {
        "cadip": {"station": "cadip"},
        "s1_ins": {"station": "ins", "satellites": ["S1A", "S1C"]},
        "s1_mti": {"station": "mti"},
        "prip": {"station": "prip"},
        "prip_icd": {"station": "ips"},
        "auxip": {"station": "auxip"},
        "adgs": {"station": "adgs"},
    }
    return StationRegistry.model_validate(
        {"stations": {c.name: c for c in configs}, "collections": collections, "source": "the test registry"}
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def queue(client: Client, settings: Settings, stations: RunningSimulator) -> AsyncIterator[str]:
    own = settings.with_registry(registry_of(stations))
    name = f"tq-odata-{uuid.uuid4()}"
    async with activities(own) as fns, running_workers(client, own, fns, task_queue=name):
        yield name


@pytest.fixture
def sim(stations: RunningSimulator) -> Iterator[Simulator]:
    controls = Simulator(stations.url)
    controls.clear_faults()
    yield controls
    controls.clear_faults()
    controls.close()


def collection_name() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


async def run(client: Client, queue: str, workflow: str, request: Any, result_type: type[Any]) -> tuple[Any, Progress]:
    handle = await client.start_workflow(
        workflow, request, id=f"test-odata-{uuid.uuid4()}", task_queue=queue, result_type=result_type
    )
    result = await handle.result()
    return result, await handle.query(PROGRESS_QUERY, result_type=Progress)


def catalog_items(settings: Settings, collection: str) -> dict[str, dict[str, Any]]:
    with open_stac_api(settings.catalog.url, 60) as catalog:
        return {i["id"]: i for i in catalog.search(collections=[collection], limit=500).items_as_dicts()}


def comparable(item: dict[str, Any], collection: str) -> dict[str, Any]:
    """An item with what differs by nature between two collections taken out: its collection, its links and
    the collection's name in the asset hrefs; and the checksum's provenance."""
    item = json.loads(json.dumps(item).replace(f"/{collection}/", "/<collection>/"))
    item.pop("links", None)
    item.pop("collection", None)
    item["stac_extensions"] = sorted(item["stac_extensions"])
    for asset in item["assets"].values():
        asset.pop(CHECKSUM_ORIGIN, None)
    return item


def assert_same_catalog_items(settings: Settings, via_facade: str, via_odata: str) -> dict[str, dict[str, Any]]:
    facade, odata = catalog_items(settings, via_facade), catalog_items(settings, via_odata)
    assert facade and set(facade) == set(odata)
    for item_id, item in facade.items():
        assert comparable(odata[item_id], via_odata) == comparable(item, via_facade), item_id
    return odata


async def test_a_cadip_session_from_an_icd_only_station_equals_the_facade_one(
    client: Client, queue: str, settings: Settings, sim: Simulator
) -> None:
    """No Files expansion, no checksums, sizes as strings, four files per page and a redirect to a second host:
    the catalog gets the same item as through the STAC facade, the MD5s computed while streaming."""
    via_facade, via_odata = collection_name(), collection_name()
    await run(
        client, queue, CADIP_STAGING, CadipStagingInput.for_session(OWNER, SESSION, via_facade), CadipStagingResult
    )
    sim.reset_stats()
    request = CadipStagingInput.for_session(OWNER, SESSION, via_odata, cadip_collection="s1_ins")
    result, progress = await run(client, queue, CADIP_STAGING, request, CadipStagingResult)

    assert result.staging.staged == [SESSION] and result.warnings == [] and progress.warnings == []
    items = assert_same_catalog_items(settings, via_facade, via_odata)
    assets = items[SESSION]["assets"].values()
    assert len(assets) == 38 and all(a[CHECKSUM_ORIGIN] == "computed-at-staging" for a in assets)
    stats = sim.stats("ins")
    assert stats["by_route"]["GET /ins/Files"] >= 38 // 4  # every page of the files, by next link
    assert stats["by_route"]["GET /ins/Redirect/Files({entity_id})/$value"] == 38  # via the second host
    assert sim.stats("cadip")["requests"] == 0


async def test_a_prip_window_from_an_icd_only_station_equals_the_facade_one(
    client: Client, queue: str, settings: Settings, sim: Simulator
) -> None:
    product_type = f"T{uuid.uuid4().hex[:8].upper()}"
    start = datetime(2032, 3, 1, tzinfo=UTC)
    # Product k is valid over [k h, k+2 h]: the window is covered by k = 1 and k = 2 only.
    sim.add_products(
        "prip", product_type, 6, start=start.isoformat(), step_seconds=3600, validity_seconds=7200, size=700
    )
    window = (start + timedelta(hours=2, minutes=30), start + timedelta(hours=2, minutes=40))
    via_facade, via_odata = collection_name(), collection_name()
    for station_collection, collection in (("prip", via_facade), ("prip_icd", via_odata)):
        request = PripStagingInput.for_window(
            OWNER, product_type, collection, *window, prip_collection=station_collection
        )
        result, _ = await run(client, queue, PRIP_STAGING, request, WindowStagingResult)
        assert result.items_found == 2  # covered by the products starting at +1 h and +2 h
    items = assert_same_catalog_items(settings, via_facade, via_odata)
    assert all(CHECKSUM_ORIGIN not in a for i in items.values() for a in i["assets"].values())


async def test_an_auxip_window_from_an_icd_only_station_equals_the_facade_one(
    client: Client, queue: str, settings: Settings, sim: Simulator
) -> None:
    """The seeded AUXIP files over a day of 2024, several types, through three-product pages."""
    window = (datetime(2024, 6, 3, tzinfo=UTC), datetime(2024, 6, 3, 6, tzinfo=UTC))
    via_facade, via_odata = collection_name(), collection_name()
    found = []
    for station_collection, collection in (("auxip", via_facade), ("adgs", via_odata)):
        request = AuxipStagingInput.for_window(
            OWNER, "AUX_RESORB", collection, *window, auxip_collection=station_collection
        )
        result, _ = await run(client, queue, AUXIP_STAGING, request, WindowStagingResult)
        found.append(result.items_found)
    assert found[0] == found[1] > 0
    assert_same_catalog_items(settings, via_facade, via_odata)


async def test_two_cadip_stations_stage_at_once_each_within_its_own_limit(
    client: Client, queue: str, settings: Settings, sim: Simulator
) -> None:
    session = sim.add_session(
        session_id=f"S1A_TWO_{uuid.uuid4().hex[:6].upper()}", chunks_per_channel=6, chunk_size=20_000
    )
    session_id = session["session"]["SessionId"]
    sim.reset_stats()
    sim.faults(ins={"latency_ms": 150}, mti={"latency_ms": 150})
    requests = [
        CadipStagingInput.for_session(OWNER, session_id, collection_name(), cadip_collection=station)
        for station in ("s1_ins", "s1_mti")
    ]
    results = await asyncio.gather(*(run(client, queue, CADIP_STAGING, r, CadipStagingResult) for r in requests))
    assert [result.staging.staged for result, _ in results] == [[session_id]] * 2
    for station, limit in LIMITS.items():
        stats = sim.stats(station)
        assert stats["downloads"] == 12
        assert 1 <= stats["max_downloads_in_flight"] <= limit, (station, stats)


async def test_an_incomplete_session_is_staged_with_a_warning_or_refused_when_completeness_is_required(
    client: Client, queue: str, settings: Settings, sim: Simulator, s3: Any
) -> None:
    spec = {"session_id": f"S1A_INC_{uuid.uuid4().hex[:6].upper()}", "channels": 2, "chunks_per_channel": 2}
    session_id = sim.add_session(**spec, chunk_size=1000, missing_final_block=[2])["session"]["SessionId"]
    refused_into = collection_name()
    strict = CadipStagingInput.for_session(
        OWNER, session_id, refused_into, cadip_collection="s1_mti", require_complete=True
    )
    with pytest.raises(WorkflowFailureError) as caught:
        await run(client, queue, CADIP_STAGING, strict, CadipStagingResult)
    cause = root_cause(caught.value)
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidInputError"
    assert f"session {session_id} is incomplete: channel 2 has no final block yet (2 blocks)" in cause.message
    assert not _collection_exists(settings, refused_into)
    assert s3.list_objects_v2(Bucket=settings.s3.rs_bucket, Prefix=f"{OWNER}/{refused_into}/")["KeyCount"] == 0

    lenient = CadipStagingInput.for_session(OWNER, session_id, collection_name(), cadip_collection="s1_mti")
    result, progress = await run(client, queue, CADIP_STAGING, lenient, CadipStagingResult)
    assert result.staging.staged == [session_id]
    assert (
        result.warnings
        == progress.warnings
        == [f"session {session_id} is incomplete: channel 2 has no final block yet (2 blocks)"]
    )


def _collection_exists(settings: Settings, collection: str) -> bool:
    return httpx.get(f"{settings.catalog.url}/collections/{collection}", timeout=30).status_code == 200


@pytest.mark.parametrize(
    ("workflow", "request_of", "message"),
    [
        (
            CADIP_STAGING,
            lambda c: CadipStagingInput.for_session(OWNER, SESSION, c, cadip_collection="nope"),
            "unknown CADIP collection 'nope' in the test registry (known: cadip, s1_ins, s1_mti)",
        ),
        (
            PRIP_STAGING,
            lambda c: PripStagingInput.for_window(
                OWNER, "S01SIWSLC", c, "2024-01-01", "2024-01-02", prip_collection="nope"
            ),
            "unknown PRIP collection 'nope'",
        ),
        (
            AUXIP_STAGING,
            lambda c: AuxipStagingInput.for_window(
                OWNER, "AUX_RESORB", c, "2024-01-01", "2024-01-02", auxip_collection="s1_ins"
            ),
            "unknown AUXIP collection 's1_ins'",
        ),
    ],
)
async def test_unknown_collections_fail_at_once_and_write_nothing(
    client: Client, queue: str, settings: Settings, s3: Any, workflow: str, request_of: Any, message: str
) -> None:
    collection = collection_name()
    with pytest.raises(WorkflowFailureError) as caught:
        await run(client, queue, workflow, request_of(collection), dict)
    cause = root_cause(caught.value)
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidInputError" and message in cause.message
    assert not _collection_exists(settings, collection)
    assert s3.list_objects_v2(Bucket=settings.s3.rs_bucket, Prefix=f"{OWNER}/{collection}/")["KeyCount"] == 0


async def test_no_station_secret_in_the_histories(client: Client, queue: str, stations: RunningSimulator) -> None:
    secrets = [stations.credentials["client_secret"], stations.credentials["password"]]
    async for execution in client.list_workflows(f"TaskQueue = '{queue}'"):
        history = (await client.get_workflow_handle(execution.id).fetch_history()).to_json()
        assert not [s for s in secrets if s in history], execution.id


def test_the_test_registry_is_a_valid_stations_file_too(tmp_path: Path, stations: RunningSimulator) -> None:
    """What the tests configure in code, an operator can write in YAML (a round trip through the loader)."""
    registry = registry_of(stations)
    spec = json.loads(registry.model_dump_json(exclude={"open_collections", "source"}, round_trip=True))
    for station in spec["stations"].values():
        station.pop("name")
        for secret in ("client_secret", "password"):
            station[secret] = "${SIM_" + secret.upper() + "}"
    path = tmp_path / "stations.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    from rs_ondemand.stations.registry import load_stations_file

    env = {"SIM_CLIENT_SECRET": stations.credentials["client_secret"], "SIM_PASSWORD": stations.credentials["password"]}
    loaded = load_stations_file(path, env)
    assert loaded.stations == registry.stations and loaded.collections == registry.collections
