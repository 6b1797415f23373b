"""The catalog behind RS-Server's conventions: an API key or an OAuth2 bearer token on every request, and
collections addressed as `<owner>:<collection>` (paths) and `<owner>_<collection>` (searches).

The gateway here is a test means standing in for RS-Server in front of the session stack's real catalog: it
refuses requests without a valid key or token (tokens checked against the station simulator's OAuth2 server)
and files `<owner>:<collection>` under the internal id `<owner>_<collection>`, as RS-Server does.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.client import Client

from rs_ondemand.activities.catalog_client import CatalogClient
from rs_ondemand.config import CatalogSettings, Settings
from rs_ondemand.errors import CatalogRejectedError
from rs_ondemand.stack.ports import free_port
from rs_ondemand.worker import activities, running_workers
from tests.support.auxip_query import run_query
from tests.support.auxip_query_workflow import AuxipQueryWorkflow
from tests.support.simulator_server import RunningSimulator, run_simulator

KEY = "catalog-key-8f1"
OWNER = "olga"


def gateway(catalog_url: str, token_check_url: str) -> Starlette:
    async def forward(request: Request) -> Response:
        token_ok = False
        if request.headers.get("authorization", "").startswith("Bearer "):
            async with httpx.AsyncClient() as http:
                check = await http.get(token_check_url, headers={"Authorization": request.headers["authorization"]})
                token_ok = check.status_code == 200
        if request.headers.get("x-api-key") != KEY and not token_ok:
            return Response('{"detail": "Not authenticated"}', status_code=401, media_type="application/json")
        path = request.url.path
        if path.startswith("/collections/") and ":" in path.split("/")[2]:
            path = path.replace(":", "_", 1)  # RS-Server's internal id of <owner>:<collection>
        body = await request.body()
        if request.method == "POST" and path == "/collections":
            document = httpx.Response(200, content=body).json()
            document["id"] = f"{document.pop('owner')}_{document['id']}"
            body = httpx.Response(200, json=document).content
        elif request.method in ("POST", "PUT") and "/items" in path:
            document = httpx.Response(200, content=body).json()
            if "collection" in document:  # an item names its collection by RS-Server's internal id too
                document["collection"] = path.split("/")[2]
                body = httpx.Response(200, json=document).content
        async with httpx.AsyncClient() as http:
            upstream = await http.request(
                request.method,
                f"{catalog_url}{path}",
                params=request.query_params,
                content=body,
                headers={"content-type": request.headers.get("content-type", "application/json")},
            )
        return Response(upstream.content, status_code=upstream.status_code, media_type="application/json")

    methods = ["GET", "POST", "PUT", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods), Route("/", forward, methods=methods)])


class ThreadServer(uvicorn.Server):
    """uvicorn in a thread of the test process: signals stay with pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@pytest.fixture(scope="module")
def oauth2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    with run_simulator(Path(tmp_path_factory.mktemp("oauth2"))) as sim:
        yield sim


@pytest.fixture(scope="module")
def rs_server(settings: Settings, oauth2: RunningSimulator) -> Iterator[str]:
    port = free_port()
    app = gateway(settings.catalog.url.rstrip("/"), f"{oauth2.url}/cadip/")
    server = ThreadServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none"))
    failures: list[BaseException] = []

    def serve() -> None:
        try:
            server.run()
        except BaseException as err:
            failures.append(err)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, f"the gateway did not start: {failures!r}"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def item(item_id: str) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": item_id,
        "geometry": {"type": "Point", "coordinates": [0, 0]},
        "bbox": [0, 0, 0, 0],
        "properties": {"datetime": "2025-01-01T00:00:00Z", "owner": OWNER},
        "links": [],
        "assets": {},
    }


async def round_trip(client: CatalogClient, settings: Settings) -> None:
    """Create a collection and an item through the gateway; find them under RS-Server's internal id."""
    collection, item_id = f"auth-{uuid.uuid4().hex[:8]}", f"item-{uuid.uuid4().hex[:8]}"
    assert await client.ensure_collection(collection, OWNER) is True
    assert await client.ensure_collection(collection, OWNER) is False
    assert await client.create_item(collection, item(item_id), OWNER) is True
    assert [i["id"] for i in await client.items(collection, [item_id, "absent"], owner=OWNER)] == [item_id]
    assert await client.upsert_item(collection, item(item_id), OWNER) is False
    async with httpx.AsyncClient() as direct:
        internal = f"{settings.catalog.url}/collections/{OWNER}_{collection}/items/{item_id}"
        assert (await direct.get(internal)).status_code == 200
        assert (await direct.get(f"{settings.catalog.url}/collections/{collection}")).status_code == 404


async def test_an_api_key_and_rs_server_naming(settings: Settings, rs_server: str, http: httpx.AsyncClient) -> None:
    keyed = CatalogSettings(url=rs_server, api_key=SecretStr(KEY), naming="rs-server")
    await round_trip(CatalogClient(keyed, http), settings)
    wrong = CatalogClient(keyed.model_copy(update={"api_key": SecretStr("not-the-key")}), http)
    with pytest.raises(CatalogRejectedError, match="catalog refused GET /collections/olga:x \\(401\\)") as refused:
        await wrong.ensure_collection("x", OWNER)
    assert "not-the-key" not in str(refused.value)


async def test_an_oauth2_bearer_token_renewed_when_refused(
    settings: Settings, rs_server: str, oauth2: RunningSimulator, http: httpx.AsyncClient
) -> None:
    login = CatalogSettings(
        url=rs_server,
        token_url=f"{oauth2.url}/cadip/oauth2/token",
        client_id=oauth2.credentials["client_id"],
        client_secret=SecretStr(oauth2.credentials["client_secret"]),
        username=oauth2.credentials["username"],
        password=SecretStr(oauth2.credentials["password"]),
        naming="rs-server",
    )
    client = CatalogClient(login, http)
    await round_trip(client, settings)
    client._tokens._access = "revoked-token"  # type: ignore[union-attr]  # the server forgot it
    assert await client.ensure_collection(f"auth-{uuid.uuid4().hex[:8]}", OWNER) is True


async def test_plain_naming_uses_collection_ids_as_given(settings: Settings, http: httpx.AsyncClient) -> None:
    client = CatalogClient(settings.catalog, http)
    assert client.collection_path("c", OWNER) == "/collections/c" and client.search_collection("c", OWNER) == "c"
    rs = CatalogClient(settings.catalog.model_copy(update={"naming": "rs-server"}), http)
    assert rs.collection_path("c", OWNER) == "/collections/olga:c" and rs.search_collection("c", OWNER) == "olga_c"
    assert rs.collection_path("c") == "/collections/c"  # no owner: the catalog's authenticated user's


async def test_a_request_removes_only_its_own_empty_collection_under_rs_server_naming(
    settings: Settings, rs_server: str, http: httpx.AsyncClient
) -> None:
    client = CatalogClient(CatalogSettings(url=rs_server, api_key=SecretStr(KEY), naming="rs-server"), http)
    collection = f"auth-{uuid.uuid4().hex[:8]}"
    assert await client.ensure_collection(collection, OWNER, created_by="request-a") is True
    assert await client.remove_if_empty(collection, "request-b", OWNER) is False
    assert await client.remove_if_empty(collection, "request-a", OWNER) is True
    internal = f"{settings.catalog.url}/collections/{OWNER}_{collection}"
    assert (await http.get(internal)).status_code == 404


async def test_a_workflow_reads_back_its_owners_items_under_rs_server_naming(
    client: Client, settings: Settings, rs_server: str
) -> None:
    """ADF staging, then reading the staged items back for the processor: both under `<owner>:<collection>`."""
    catalog = settings.catalog.model_copy(update={"url": rs_server, "api_key": SecretStr(KEY), "naming": "rs-server"})
    rs = settings.model_copy(update={"catalog": catalog})
    queue = f"tq-rs-naming-{uuid.uuid4()}"
    async with (
        activities(rs) as fns,
        running_workers(client, rs, fns, task_queue=queue, extra_workflows=[AuxipQueryWorkflow]),
    ):
        outcome = await run_query(client, queue, "AUX_RESORB", timeout_seconds=0)
    (item,) = outcome.items  # the workflow's owner is dave: without it, the search looks in another collection
    (href,) = item.assets.values()
    assert href.startswith(f"s3://{settings.s3.rs_bucket}/dave/{item.collection}/{item.id}/")
