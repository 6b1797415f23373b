"""The station client against a real simulator: OAuth2 tokens, trusted locations, ranges, redirects."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.testing import ActivityEnvironment

from rs_ondemand.activities.odata_search import odata_pages
from rs_ondemand.activities.station_client import TOKEN_MARGIN_S, StationClient, StationClients
from rs_ondemand.activities.stations import StationActivities
from rs_ondemand.activities.storage import ObjectStore, StorageActivities
from rs_ondemand.config import Settings
from rs_ondemand.errors import InvalidInputError, StationAuthError, UntrustedLocationError
from rs_ondemand.models.staging import PageListSlice, PageRef, SearchResult, StationSearchInput
from rs_ondemand.stations.registry import StationConfig, StationRegistry
from tests.support.simulator_server import RunningSimulator, run_simulator
from tests.support.stack import Simulator

SESSION = "S1A_20241114143038056552"


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def first_chunk_url(settings: Settings) -> tuple[str, int]:
    """Download URL and size of one chunk of the real session, as the station's STAC facade gives them."""
    response = httpx.get(f"{settings.cadip.url}/search", params={"ids": "S1A_20241114143038056552"}, timeout=30)
    asset = next(iter(response.json()["features"][0]["assets"].values()))
    return asset["href"], asset["file:size"]


def cadip(settings: Settings) -> StationConfig:
    return settings.station_registry().stations["cadip"]


async def read_all(station: StationClient, url: str, offset: int = 0) -> bytes:
    async with station.download(url, offset=offset) as response:
        return b"".join([chunk async for chunk in response.aiter_bytes()])


async def test_token_is_reused_until_renewal_is_asked(settings: Settings, http: httpx.AsyncClient) -> None:
    station = StationClient(cadip(settings), http)
    first = await station.token()
    assert await station.token() == first
    assert await station.token(renew=True) != first


async def test_wrong_credentials_are_a_final_auth_error(settings: Settings, http: httpx.AsyncClient) -> None:
    wrong = cadip(settings).model_copy(update={"password": SecretStr("not-the-password")})
    with pytest.raises(StationAuthError, match="refused our credentials"):
        await StationClient(wrong, http).token()


async def test_tokens_are_never_sent_outside_a_station(settings: Settings, http: httpx.AsyncClient) -> None:
    registry = StationClients(settings.station_registry(), http)
    href, _ = first_chunk_url(settings)
    assert registry.for_url(href).name == "cadip"
    for foreign in ("http://attacker.example/cadip/Files(1)/$value", href.replace("/cadip/", "/cadipx/")):
        with pytest.raises(UntrustedLocationError):
            registry.for_url(foreign)


async def test_download_resumes_from_an_offset(settings: Settings, http: httpx.AsyncClient) -> None:
    station = StationClient(cadip(settings), http)
    href, size = first_chunk_url(settings)
    whole = await read_all(station, href)
    assert len(whole) == size
    assert await read_all(station, href, offset=size - 1000) == whole[-1000:]


async def test_a_revoked_token_is_replaced_transparently(settings: Settings, http: httpx.AsyncClient) -> None:
    station = StationClient(cadip(settings), http)
    await station.token()
    station._tokens._access = "revoked-token"  # type: ignore[union-attr]  # as if the station forgot us mid-way (expiry, restart)
    href, size = first_chunk_url(settings)
    assert len(await read_all(station, href)) == size


@pytest.fixture(scope="module")
def redirecting_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    with run_simulator(Path(tmp_path_factory.mktemp("redirecting")), redirect_downloads=True) as sim:
        yield sim


async def test_redirects_are_followed_with_the_token_inside_the_station(
    redirecting_simulator: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim = redirecting_simulator
    config = StationConfig(
        name="cadip",
        kind="cadip",
        api="stac",
        url=f"{sim.url}/cadip/stac",
        odata_url=f"{sim.url}/cadip",
        token_url=f"{sim.url}/cadip/oauth2/token",
        client_id=sim.credentials["client_id"],
        client_secret=SecretStr(sim.credentials["client_secret"]),
        username=sim.credentials["username"],
        password=SecretStr(sim.credentials["password"]),
    )
    search = await http.get(f"{sim.url}/cadip/stac/search", params={"ids": "S1A_20241114143038056552"})
    asset = next(iter(search.json()["features"][0]["assets"].values()))
    raw = await http.get(asset["href"], headers=sim.auth("cadip"))
    assert raw.status_code == 307  # the station really redirects

    body = await read_all(StationClient(config, http), asset["href"])
    assert hashlib.md5(body).hexdigest() == asset["file:checksum"][len("d50110") :]


# --------------------------------------------------------------------------------- searches, by registry


def station_on(sim: RunningSimulator, name: str, kind: str, api: str = "odata", **extra: Any) -> StationConfig:
    url = f"{sim.url}/{name}/stac" if api == "stac" else f"{sim.url}/{name}"
    return StationConfig.model_validate(
        {
            "name": name,
            "kind": kind,
            "api": api,
            "url": url,
            "odata_url": f"{sim.url}/{name}",
            "token_url": f"{sim.url}/{name}/oauth2/token",
            **sim.credentials,
            **extra,
        }
    )


FACADE_KEY = "facade-key-4d2"


@pytest.fixture(scope="module")
def icd_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    """A station whose tokens live 61 s (1 s once our 60 s margin is taken) and that pages by 3; a STAC facade
    that wants an API key."""
    stations = {
        "short": {
            "kind": "cadip",
            "stac": False,
            "expand_files": False,
            "page_size": 3,
            "token_expires_in": TOKEN_MARGIN_S + 1,
        },
        "keyed": {"kind": "prip", "api_key": FACADE_KEY},
        "redir": {"kind": "cadip", "stac": False, "redirect_host": "localhost"},
    }
    with run_simulator(Path(tmp_path_factory.mktemp("icd")), stations=json.dumps(stations)) as sim:
        yield sim


async def search(
    registry: StationRegistry, http: httpx.AsyncClient, s3_settings: Settings, request: StationSearchInput
) -> SearchResult:
    async with ObjectStore.open(s3_settings.s3) as store:
        activities = StationActivities(StationClients(registry, http), store)
        return await ActivityEnvironment().run(activities.search_station, request)


async def test_an_odata_listing_renews_tokens_that_lapse_between_pages(
    icd_simulator: RunningSimulator, http: httpx.AsyncClient, settings: Settings
) -> None:
    sim = icd_simulator
    registry = StationRegistry(stations={"short": station_on(sim, "short", "cadip")}, open_collections=True)
    helpers = Simulator(sim.url)
    helpers.faults(short={"latency_ms": 400})  # 38 files by 3: ~5 s of listing, tokens lapse every second
    try:
        request = StationSearchInput(station="cadip", request_id=f"test-{uuid.uuid4()}", ids=[SESSION])
        found = await search(registry, http, settings, request)
        stats = helpers.stats("short")
    finally:
        helpers.clear_faults()
        helpers.close()
    assert (found.items, found.assets, found.station) == (1, 38, "short")
    assert stats["by_route"]["GET /short/Files"] >= 13
    assert stats["by_route"]["POST /short/oauth2/token"] >= 3


async def test_a_revoked_token_is_replaced_on_a_listing(
    icd_simulator: RunningSimulator, http: httpx.AsyncClient
) -> None:
    client = StationClient(station_on(icd_simulator, "short", "cadip"), http)
    await client.token()
    client._tokens._access = "revoked-token"  # type: ignore[union-attr]  # as if the station forgot it
    body = await client.get_json(f"{icd_simulator.url}/short/Sessions", {"$top": "1"})
    assert len(body["value"]) == 1


async def test_an_unknown_collection_of_a_stac_facade_fails_at_once(
    settings: Settings, http: httpx.AsyncClient
) -> None:
    """Issue 14 defect 4: the facade answers 404 for `/collections/nope`; the search used to find nothing and
    the request succeeded with `items_found: 0`."""
    prip = settings.prip.as_station()  # the shorthand's PRIP station: the facade says which collections exist
    assert prip is not None
    shorthand = StationRegistry(stations={"prip": prip}, open_collections=True)
    request = StationSearchInput(
        station="prip", request_id=f"test-{uuid.uuid4()}", collections=["nope"], filter=ANY_SLC
    )
    with pytest.raises(InvalidInputError, match="unknown PRIP collection 'nope': station prip has no collection"):
        await search(shorthand, http, settings, request)
    found = await search(shorthand, http, settings, request.model_copy(update={"collections": ["prip"]}))
    assert found.items > 0


ANY_SLC = {"op": "=", "args": [{"property": "product:type"}, "S01SIWSLC"]}


async def test_an_invalid_filter_is_refused_before_any_station_is_asked(
    settings: Settings, http: httpx.AsyncClient
) -> None:
    request = StationSearchInput(
        station="prip", request_id=f"test-{uuid.uuid4()}", filter={"op": "=", "args": [{"property": "a"}]}
    )
    with pytest.raises(InvalidInputError, match="invalid CQL2-JSON filter"):
        await search(settings.station_registry(), http, settings, request)


async def test_a_facade_api_key_goes_with_the_search(
    icd_simulator: RunningSimulator, http: httpx.AsyncClient, settings: Settings
) -> None:
    keyed = station_on(icd_simulator, "keyed", "prip", api="stac", api_key=FACADE_KEY)
    request = StationSearchInput(
        station="prip", request_id=f"test-{uuid.uuid4()}", collections=["prip"], filter=ANY_SLC
    )
    found = await search(StationRegistry(stations={"keyed": keyed}, open_collections=True), http, settings, request)
    assert found.items > 0 and found.station == "keyed"
    keyless = keyed.model_copy(update={"api_key": None})
    with pytest.raises(StationAuthError, match="401"):
        await search(StationRegistry(stations={"keyed": keyless}, open_collections=True), http, settings, request)


async def test_a_listing_without_next_links_is_paged_by_skip(settings: Settings, http: httpx.AsyncClient) -> None:
    """The stack's AUXIP OData root gives no next link: 704 products in pages of 200, until an empty page."""
    auxip = settings.station_registry().stations["auxip"]
    assert auxip.odata_url
    client = StationClient(auxip.model_copy(update={"api": "odata", "url": auxip.odata_url}), http)
    pages = [page async for page in odata_pages(client, "Products", {"$orderby": "PublicationDate desc,Name asc"})]
    ids = [product["Id"] for page in pages for product in page]
    assert [len(page) for page in pages] == [200, 200, 200, 104]
    assert len(set(ids)) == 704


async def test_a_redirect_carries_the_token_only_to_a_listed_host(
    icd_simulator: RunningSimulator, http: httpx.AsyncClient
) -> None:
    config = station_on(icd_simulator, "redir", "cadip")
    client = StationClient(config, http)
    files = await client.get_json(f"{icd_simulator.url}/redir/Files", {"$filter": f"SessionId eq '{SESSION}'"})
    chunk = files["value"][0]
    url = f"{icd_simulator.url}/redir/Files({chunk['Id']})/$value"
    with pytest.raises(StationAuthError, match=r"localhost.*\(401\)"):  # followed, but without our token
        await read_all(client, url)
    trusting = StationClient(config.model_copy(update={"redirect_hosts": ("localhost",)}), http)
    assert len(await read_all(trusting, url)) == chunk["Size"]


async def test_a_search_of_more_pages_than_it_may_return_keeps_their_references_in_a_page_list(
    settings: Settings, http: httpx.AsyncClient
) -> None:
    """The stack's AUXIP products in pages of 100: returned as they are when they are few enough, kept in the
    work bucket beyond `inline_pages`, whence `read_page_refs` gives any run's share of the same references."""
    request = StationSearchInput(station="auxip", request_id=f"test-{uuid.uuid4()}", page_size=100)
    inline = await search(settings.station_registry(), http, settings, request)
    assert inline.page_list is None and len(inline.pages) > 3
    listed = await search(settings.station_registry(), http, settings, request.model_copy(update={"inline_pages": 3}))
    assert listed.pages == [] and listed.page_list is not None
    assert listed.page_list.pages == len(inline.pages)
    assert (listed.items, listed.assets, listed.bytes) == (inline.items, inline.assets, inline.bytes)

    async with ObjectStore.open(settings.s3) as store:
        storage = StorageActivities(store)

        async def read(start: int, count: int) -> list[PageRef]:
            part = PageListSlice(page_list=listed.page_list, start=start, count=count)
            return await ActivityEnvironment().run(storage.read_page_refs, part)

        assert await read(0, 3) + await read(3, 100) == inline.pages
        wrong = listed.page_list.model_copy(update={"pages": listed.page_list.pages + 1})
        with pytest.raises(InvalidInputError, match="lists"):
            await ActivityEnvironment().run(storage.read_page_refs, PageListSlice(page_list=wrong, start=0, count=1))
