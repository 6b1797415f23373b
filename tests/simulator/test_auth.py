"""OAuth2 token grants and bearer-token checks of the simulated stations."""

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.support.simulator_server import STATIONS, RunningSimulator, run_simulator

DATA_ROUTES = {"cadip": "/cadip/Sessions", "auxip": "/auxip/Products", "prip": "/prip/Products"}


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    """A simulator whose access tokens live one second."""
    with run_simulator(tmp_path_factory.mktemp("short-lived"), token_expires_in=1) as running:
        yield running


@pytest.mark.parametrize("station", STATIONS)
async def test_password_grant_issues_bearer_token(
    client: httpx.AsyncClient, simulator: RunningSimulator, station: str
) -> None:
    """The token answer has the RS mock fields, and the token opens the station's data routes."""
    response = await client.post(f"/{station}/oauth2/token", data={"grant_type": "password", **simulator.credentials})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 1200
    assert body["refresh_expires_in"] == 3600
    assert body["access_token"] and body["refresh_token"]
    data = await client.get(DATA_ROUTES[station], headers={"Authorization": f"Bearer {body['access_token']}"})
    assert data.status_code == 200


async def test_token_request_accepts_json_body(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    response = await client.post("/cadip/oauth2/token", json={"grant_type": "password", **simulator.credentials})
    assert response.status_code == 200


@pytest.mark.parametrize("wrong", ["client_id", "client_secret", "username", "password"])
async def test_wrong_credentials_are_refused(
    client: httpx.AsyncClient, simulator: RunningSimulator, wrong: str
) -> None:
    form = {"grant_type": "password", **simulator.credentials, wrong: "nope"}
    response = await client.post("/cadip/oauth2/token", data=form)
    assert response.status_code == 401
    assert "message" in response.json()


async def test_unsupported_grant_is_a_bad_request(client: httpx.AsyncClient) -> None:
    response = await client.post("/cadip/oauth2/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 400


@pytest.mark.parametrize("station", STATIONS)
async def test_missing_token_is_refused_with_rs_message(client: httpx.AsyncClient, station: str) -> None:
    response = await client.get(DATA_ROUTES[station])
    assert response.status_code == 401
    assert response.json() == {"message": "Token is missing!"}


async def test_download_without_token_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/cadip/Files(bba71884-5c9c-4d4b-8986-1a428b87b441)/$value")
    assert response.status_code == 401
    assert response.json() == {"message": "Token is missing!"}


async def test_unknown_token_is_invalid(client: httpx.AsyncClient) -> None:
    response = await client.get("/cadip/Sessions", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert response.json() == {"message": "Token is invalid!"}


async def test_tokens_are_per_station(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    """A CADIP token does not open PRIP or AUXIP."""
    headers = simulator.auth("cadip")
    assert (await client.get("/cadip/Sessions", headers=headers)).status_code == 200
    for route in (DATA_ROUTES["prip"], DATA_ROUTES["auxip"]):
        response = await client.get(route, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"message": "Token is invalid!"}


async def test_refresh_grant_issues_a_new_token(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    first = simulator.token_response("auxip")
    response = await client.post(
        "/auxip/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert response.status_code == 200
    second = response.json()
    assert second["access_token"] != first["access_token"]
    data = await client.get("/auxip/Products", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert data.status_code == 200


async def test_revoked_tokens_are_refused_and_a_new_login_works(
    client: httpx.AsyncClient, simulator: RunningSimulator
) -> None:
    """`DELETE /_tokens?station=prip` forgets PRIP's access and refresh tokens, and only PRIP's."""
    prip, cadip = simulator.token_response("prip"), simulator.auth("cadip")
    revoked = await client.delete("/_tokens", params={"station": "prip"})
    assert revoked.status_code == 200 and revoked.json()["prip"] >= 1 and set(revoked.json()) == {"prip"}
    response = await client.get("/prip/Products", headers={"Authorization": f"Bearer {prip['access_token']}"})
    assert response.status_code == 401
    assert response.json() == {"message": "Token is invalid!"}
    refresh = {"grant_type": "refresh_token", "refresh_token": prip["refresh_token"]}
    assert (await client.post("/prip/oauth2/token", data=refresh)).status_code == 401
    assert (await client.get("/cadip/Sessions", headers=cadip)).status_code == 200
    assert (await client.get("/prip/Products", headers=simulator.auth("prip"))).status_code == 200
    assert (await client.delete("/_tokens")).status_code == 200
    assert (await client.get("/cadip/Sessions", headers=cadip)).status_code == 401
    assert (await client.delete("/_tokens", params={"station": "nope"})).status_code == 422


async def test_unknown_refresh_token_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/prip/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert response.status_code == 401


async def test_open_routes_need_no_token(client: httpx.AsyncClient) -> None:
    """Health, test controls and the STAC facades are open, as rs-server's search is to the workflows."""
    for route in ("/health", "/_stats", "/_faults", "/cadip/stac", "/prip/stac/search"):
        assert (await client.get(route)).status_code == 200, route


async def test_expired_token_is_refused_and_refresh_still_works(short_lived: RunningSimulator) -> None:
    tokens = short_lived.token_response("cadip")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with httpx.AsyncClient(base_url=short_lived.url) as http:
        assert (await http.get("/cadip/Sessions", headers=headers)).status_code == 200
        await asyncio.sleep(1.1)
        response = await http.get("/cadip/Sessions", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"message": "Token is valid but is expired!"}
        refreshed = await http.post(
            "/cadip/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200
        new_headers = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
        assert (await http.get("/cadip/Sessions", headers=new_headers)).status_code == 200
