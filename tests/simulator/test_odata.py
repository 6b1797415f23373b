"""OData listings of the simulated stations: `$filter`, paging, ordering, `$count`, `$expand`, `$select`."""

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.simulator_server import RunningSimulator

REAL_SESSION = Path(__file__).parents[2] / "rs_simulator" / "data" / "cadip-session-S1A_20241114143038056552.json"
REAL_SESSION_ID = "S1A_20241114143038056552"
DEFAULT_CHUNK_SIZE = 256 * 1024


async def odata(
    client: httpx.AsyncClient, simulator: RunningSimulator, station: str, entity_set: str, **params: Any
) -> dict[str, Any]:
    """GET `/{station}/{entity_set}` with `$`-prefixed query options; asserts 200."""
    query = {f"${k}": str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
    response = await client.get(f"/{station}/{entity_set}", params=query, headers=simulator.auth(station))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"] == f"$metadata#{entity_set}"
    return dict(body)


async def session_ids(client: httpx.AsyncClient, simulator: RunningSimulator, filter_: str) -> list[str]:
    body = await odata(client, simulator, "cadip", "Sessions", filter=filter_)
    return [s["SessionId"] for s in body["value"]]


class TestSessions:
    async def test_real_session_is_served_with_its_fields(
        self, client: httpx.AsyncClient, simulator: RunningSimulator
    ) -> None:
        """The sample session keeps its ids, names and fields; sizes are scaled to the chunk size."""
        reference = json.loads(REAL_SESSION.read_text())["value"][0]
        body = await odata(
            client, simulator, "cadip", "Sessions", filter=f"SessionId eq '{REAL_SESSION_ID}'", expand="Files"
        )
        (session,) = body["value"]
        expected = {k: v for k, v in reference.items() if k not in ("Files", "QualityInfo")}
        assert {k: v for k, v in session.items() if k != "Files"} == expected
        files = {f["Id"]: f for f in session["Files"]}
        assert len(files) == len(reference["Files"]) == 38
        for ref in reference["Files"]:
            served = files[ref["Id"]]
            assert {k: v for k, v in served.items() if k not in ("Size", "Checksum")} == {
                k: v for k, v in ref.items() if k != "Size"
            }
            assert served["Size"] == round(ref["Size"] * DEFAULT_CHUNK_SIZE / 314571600)
            assert served["Checksum"][0]["Algorithm"] == "MD5"
            assert len(served["Checksum"][0]["Value"]) == 32

    async def test_seeded_sessions_span_satellites_and_years(
        self, client: httpx.AsyncClient, simulator: RunningSimulator
    ) -> None:
        body = await odata(client, simulator, "cadip", "Sessions", expand="Files")
        sessions = body["value"]
        assert len(sessions) >= 7
        assert {"S1A", "S1C", "S2B", "S3A"} <= {s["Satellite"] for s in sessions}
        assert {s["PublicationDate"][:4] for s in sessions} == {"2024", "2025"}
        for session in sessions:
            assert session["NumChannels"] == 2
            for f in session["Files"]:
                assert f["Name"] == (
                    f"DCS_{session['StationUnitId']}_{session['SessionId']}_ch{f['Channel']}_DSDB_{f['BlockNumber']:05d}.raw"
                )
            per_channel = [sum(f["Channel"] == c for f in session["Files"]) for c in (1, 2)]
            assert all(5 <= n <= 20 for n in per_channel) or session["SessionId"] == REAL_SESSION_ID

    async def test_in_and_or_with_parentheses(self, client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
        s1 = await session_ids(client, simulator, "Satellite in ('S1A', 'S1C')")
        assert s1 and all(i[:3] in ("S1A", "S1C") for i in s1)
        assert await session_ids(client, simulator, "Satellite in (S1A, S1C)") == s1  # RS clients' bare words
        mixed = await session_ids(
            client, simulator, "(Satellite eq 'S2B' or Satellite eq 'S3A') and Retransfer eq false"
        )
        assert mixed and all(i[:3] in ("S2B", "S3A") for i in mixed)
        assert set(await session_ids(client, simulator, "not (Satellite eq 'S2B')")).isdisjoint(
            await session_ids(client, simulator, "Satellite eq 'S2B'")
        )

    async def test_publication_date_window_and_integers(
        self, client: httpx.AsyncClient, simulator: RunningSimulator
    ) -> None:
        window = "PublicationDate gt 2024-11-14T00:00:00.000Z and PublicationDate lt 2024-11-15T00:00:00.000Z"
        assert await session_ids(client, simulator, window) == [REAL_SESSION_ID]
        assert await session_ids(client, simulator, "DownlinkOrbit ge 56552 and DownlinkOrbit le 56552") == [
            REAL_SESSION_ID
        ]
        assert REAL_SESSION_ID not in await session_ids(client, simulator, "DownlinkOrbit gt 56552")
        assert await session_ids(client, simulator, "DownlinkStart ge 2024-11-14T14:30:44.018Z and Satellite ne 'S1A'")

    @pytest.mark.parametrize(
        "filter_",
        ["Unknown eq 'x'", "SessionId eq", "SessionId eq 'x' )", "year(PublicationDate) eq 2024", "Files eq 1"],
    )
    async def test_bad_filter_is_a_bad_request(
        self, client: httpx.AsyncClient, simulator: RunningSimulator, filter_: str
    ) -> None:
        response = await client.get("/cadip/Sessions", params={"$filter": filter_}, headers=simulator.auth("cadip"))
        assert response.status_code == 400
        assert response.json()["message"]

    async def test_top_skip_orderby_count(self, client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
        everything = (await odata(client, simulator, "cadip", "Sessions", orderby="PublicationDate desc"))["value"]
        dates = [s["PublicationDate"] for s in everything]
        assert dates == sorted(dates, reverse=True)
        page = await odata(
            client, simulator, "cadip", "Sessions", orderby="PublicationDate desc", top=2, skip=1, count=True
        )
        assert page["@odata.count"] == len(everything)
        assert [s["Id"] for s in page["value"]] == [s["Id"] for s in everything[1:3]]
        ascending = await odata(client, simulator, "cadip", "Sessions", orderby="Satellite asc,PublicationDate desc")
        keys = [(s["Satellite"], s["PublicationDate"]) for s in ascending["value"]]
        assert keys == sorted(keys, key=lambda k: (k[0], "".join(chr(255 - ord(c)) for c in k[1])))
        assert "@odata.count" not in ascending

    @pytest.mark.parametrize(
        "params",
        [{"$top": "-1"}, {"$skip": "x"}, {"$orderby": "Nope asc"}, {"$expand": "QualityInfo"}, {"$count": "yes"}],
    )
    async def test_bad_options_are_bad_requests(
        self, client: httpx.AsyncClient, simulator: RunningSimulator, params: dict[str, str]
    ) -> None:
        response = await client.get("/cadip/Sessions", params=params, headers=simulator.auth("cadip"))
        assert response.status_code == 400

    async def test_no_match_is_an_empty_list(self, client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
        body = await odata(client, simulator, "cadip", "Sessions", filter="SessionId eq 'none'", count=True)
        assert body["value"] == [] and body["@odata.count"] == 0


class TestFiles:
    async def test_session_id_filters(self, client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
        by_upper = await odata(client, simulator, "cadip", "Files", filter=f"SessionID eq '{REAL_SESSION_ID}'")
        by_lower = await odata(client, simulator, "cadip", "Files", filter=f"SessionId in ('{REAL_SESSION_ID}', 'x')")
        assert len(by_upper["value"]) == 38
        assert by_upper["value"] == by_lower["value"]
        assert all("Checksum" in f for f in by_upper["value"])

    async def test_name_functions_and_channel(self, client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
        files = await odata(
            client,
            simulator,
            "cadip",
            "Files",
            filter=f"contains(Name,'{REAL_SESSION_ID}') and startswith(Name,'DCS_04') and "
            "endswith(Name,'_00019.raw') and Channel eq 1",
        )
        (final,) = files["value"]
        assert final["Id"] == "4ef09c22-2e8a-47d2-8680-54e137a74c85"
        assert final["FinalBlock"] is True
        later = await odata(
            client,
            simulator,
            "cadip",
            "Files",
            filter=f"SessionId eq '{REAL_SESSION_ID}' and PublicationDate gt 2024-11-14T14:33:40Z",
        )
        reference = json.loads(REAL_SESSION.read_text())["value"][0]["Files"]
        threshold = datetime.fromisoformat("2024-11-14T14:33:40Z")
        expected = {f["Id"] for f in reference if datetime.fromisoformat(f["PublicationDate"]) > threshold}
        assert {f["Id"] for f in later["value"]} == expected

    async def test_id_filter_and_select(self, client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
        body = await odata(
            client,
            simulator,
            "cadip",
            "Files",
            filter="Id eq 'bba71884-5c9c-4d4b-8986-1a428b87b441'",
            select="Id,Name,Size",
        )
        assert body["value"] == [
            {
                "Id": "bba71884-5c9c-4d4b-8986-1a428b87b441",
                "Name": "DCS_04_S1A_20241114143038056552_ch1_DSDB_00001.raw",
                "Size": DEFAULT_CHUNK_SIZE,
            }
        ]


@pytest.mark.parametrize("station", ["auxip", "prip"])
class TestProducts:
    async def test_attributes_only_when_expanded(
        self, client: httpx.AsyncClient, simulator: RunningSimulator, station: str
    ) -> None:
        plain = (await odata(client, simulator, station, "Products", top=3))["value"]
        expanded = (await odata(client, simulator, station, "Products", top=3, expand="Attributes"))["value"]
        assert all("Attributes" not in p for p in plain)
        assert all(p["Attributes"] for p in expanded)
        for product in plain:
            assert {
                "Id",
                "Name",
                "ContentType",
                "ContentLength",
                "OriginDate",
                "PublicationDate",
                "EvictionDate",
            } <= set(product)
            assert set(product["ContentDate"]) == {"Start", "End"}
            (checksum,) = product["Checksum"]
            assert checksum["Algorithm"] == "MD5" and len(checksum["Value"]) == 32 and checksum["ChecksumDate"]
            if station == "prip":
                assert product["Online"] is True and product["ModificationDate"]
                assert product["Footprint"].startswith("geography'SRID=4326;POLYGON((")
                assert product["GeoFootprint"]["type"] == "Polygon"

    async def test_attribute_any_filter(
        self, client: httpx.AsyncClient, simulator: RunningSimulator, station: str
    ) -> None:
        product_type = "AUX_RESORB" if station == "auxip" else "IW_RAW__0S"
        filter_ = (
            "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' "
            f"and att/OData.CSC.StringAttribute/Value eq '{product_type}')"
        )
        body = await odata(client, simulator, station, "Products", filter=filter_, expand="Attributes", count=True)
        assert body["@odata.count"] > 0
        for product in body["value"]:
            attributes = {a["Name"]: a for a in product["Attributes"]}
            assert attributes["productType"]["Value"] == product_type
            assert attributes["productType"]["@odata.type"] == "#OData.CSC.StringAttribute"
            assert attributes["beginningDateTime"]["@odata.type"] == "#OData.CSC.DateTimeOffsetAttribute"

    async def test_content_date_valcover(
        self, client: httpx.AsyncClient, simulator: RunningSimulator, station: str
    ) -> None:
        """Products whose validity covers a window (the ADF ValCover pattern)."""
        filter_ = "ContentDate/Start le 2024-11-14T14:30:44.018Z and ContentDate/End ge 2024-11-14T14:32:52.465Z"
        body = await odata(client, simulator, station, "Products", filter=filter_, count=True)
        assert (body["@odata.count"] > 0) == (station == "auxip")
        for product in body["value"]:
            assert product["ContentDate"]["Start"] <= "2024-11-14T14:30:44.018Z"
            assert product["ContentDate"]["End"] >= "2024-11-14T14:32:52.465Z"

    async def test_datetime_attribute_and_name_filters(
        self, client: httpx.AsyncClient, simulator: RunningSimulator, station: str
    ) -> None:
        filter_ = (
            "Attributes/OData.CSC.DateTimeOffsetAttribute/any(att:att/Name eq 'beginningDateTime' "
            "and att/OData.CSC.DateTimeOffsetAttribute/Value ge 2025-01-01T00:00:00.000Z) and startswith(Name,'S')"
        )
        body = await odata(client, simulator, station, "Products", filter=filter_)
        assert body["value"]
        assert all(p["ContentDate"]["Start"] >= "2025-01-01" for p in body["value"])


async def test_auxip_has_orbit_versions_over_2024_2025(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    """Several versions of one orbit type share a validity window, with different PublicationDates."""
    body = await odata(
        client,
        simulator,
        "auxip",
        "Products",
        filter="startswith(Name,'S1A_OPER_AUX_RESORB_OPOD_') and ContentDate/Start le 2024-11-14T14:30:00Z "
        "and ContentDate/End ge 2024-11-14T14:33:00Z",
    )
    versions = body["value"]
    assert len(versions) == 2
    assert len({(p["ContentDate"]["Start"], p["ContentDate"]["End"]) for p in versions}) == 1
    assert len({p["PublicationDate"] for p in versions}) == 2
    assert all(p["Name"].endswith(".EOF") for p in versions)
    for satellite in ("S1A", "S1C"):
        for product_type in ("AUX_PREORB", "AUX_POEORB", "MPL_ORBSCT", "AUX_PP2"):
            found = await odata(
                client,
                simulator,
                "auxip",
                "Products",
                filter=f"startswith(Name,'{satellite}_') and contains(Name,'{product_type}')",
                top=1,
            )
            assert found["value"], (satellite, product_type)


async def test_prip_intersects_footprint(client: httpx.AsyncClient, simulator: RunningSimulator) -> None:
    (product,) = (await odata(client, simulator, "prip", "Products", top=1))["value"]
    lon, lat = product["GeoFootprint"]["coordinates"][0][0]
    ring = f"{lon + 1} {lat + 1}, {lon + 1.2} {lat + 1}, {lon + 1.2} {lat + 1.2}, {lon + 1} {lat + 1}"
    area = f"geography'SRID=4326;POLYGON(({ring}))'"
    body = await odata(client, simulator, "prip", "Products", filter=f"OData.CSC.Intersects(area={area})")
    assert product["Id"] in {p["Id"] for p in body["value"]}
