"""The OData → STAC mapping and the OData query building, on entities as the ESA interfaces define them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cql2
import pytest

from rs_ondemand.cql2_filters import valcover_filter
from rs_ondemand.errors import InvalidInputError
from rs_ondemand.stations.odata_query import odata_datetime, products_filter, products_orderby, sessions_filter
from rs_ondemand.stations.odata_stac import (
    ODataEntityError,
    iso_ms,
    md5_of,
    product_item,
    satellite_of,
    session_gaps,
    session_item,
    size_of,
)

REAL_SESSION = Path(__file__).parents[2] / "rs_simulator" / "data" / "cadip-session-S1A_20241114143038056552.json"
ROOT = "https://station.example/odata/v1"
MD5 = "0123456789abcdef0123456789abcdef"


def real_session() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    session = json.loads(REAL_SESSION.read_text())["value"][0]
    return session, session.pop("Files")


def product(**fields: Any) -> dict[str, Any]:
    attributes = [
        {"Name": "productType", "ValueType": "String", "Value": "S01SIWSLC"},
        {"Name": "platformShortName", "ValueType": "String", "Value": "SENTINEL-1"},
        {"Name": "platformSerialIdentifier", "ValueType": "String", "Value": "C"},
        {"Name": "orbitNumber", "ValueType": "Integer", "Value": 1234},
        {"Name": "orbitDirection", "ValueType": "String", "Value": "DESCENDING"},
    ]
    return {
        "Id": "2b17b57d-fff4-4645-b539-91f305c27c69",
        "Name": "S1C_IW_SLC__1SDV_20250101T000000_20250101T000025_000001_000001_0001.SAFE.zip",
        "ContentType": "application/octet-stream",
        "ContentLength": "4096",
        "OriginDate": "2025-01-01T01:00:00Z",
        "PublicationDate": "2025-01-01T02:00:00.123456Z",
        "EvictionDate": "2025-01-31T02:00:00.000Z",
        "Checksum": [{"Algorithm": "MD5", "Value": MD5.upper(), "ChecksumDate": "2025-01-01T02:00:00Z"}],
        "ContentDate": {"Start": "2025-01-01T00:00:00.000Z", "End": "2025-01-01T00:00:25.000Z"},
        "GeoFootprint": {"type": "Polygon", "coordinates": [[[10, 40], [12, 40], [12, 42], [10, 42], [10, 40]]]},
        "Attributes": attributes,
    } | fields


class TestSession:
    def test_the_real_session_becomes_one_item_with_an_asset_per_chunk(self) -> None:
        session, files = real_session()
        item = session_item(session, files, ROOT + "/")
        assert item["id"] == "S1A_20241114143038056552"
        assert item["geometry"] is None and "bbox" not in item
        p = item["properties"]
        assert (p["datetime"], p["end_datetime"]) == ("2024-11-14T14:30:44.018Z", "2024-11-14T14:32:52.465Z")
        assert (p["platform"], p["constellation"], p["sat:absolute_orbit"]) == ("sentinel-1a", "sentinel-1", 56552)
        assert p["cadip:id"] == session["Id"] and p["cadip:num_channels"] == 2
        assert len(item["assets"]) == 38
        first = next(iter(item["assets"].values()))
        assert first["title"] == "DCS_04_S1A_20241114143038056552_ch1_DSDB_00001.raw"
        assert first["href"] == f"{ROOT}/Files(bba71884-5c9c-4d4b-8986-1a428b87b441)/$value"
        assert (first["cadip:channel"], first["cadip:block_number"], first["file:size"]) == (1, 1, 314571600)
        assert "file:checksum" not in first  # the real station gives none
        assert set(item["stac_extensions"]) == {
            "https://stac-extensions.github.io/file/v2.1.0/schema.json",
            "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
            "https://stac-extensions.github.io/timestamps/v1.1.0/schema.json",
        }
        assert session_gaps(item) == []

    def test_sizes_as_strings_and_checksums_are_read(self) -> None:
        session, files = real_session()
        files = [f | {"Size": str(f["Size"]), "Checksum": [{"Algorithm": "MD5", "Value": MD5}]} for f in files]
        asset = next(iter(session_item(session, files, ROOT)["assets"].values()))
        assert asset["file:size"] == 314571600 and asset["file:checksum"] == "d50110" + MD5

    def test_gaps_name_channels_without_final_block_and_missing_blocks(self) -> None:
        session, files = real_session()
        kept = [f for f in files if not (f["Channel"] == 2 and f["FinalBlock"]) and f["Name"][-9:-4] != "00003"]
        gaps = session_gaps(session_item(session, kept, ROOT))
        assert gaps == ["channel 1 lacks blocks 3", "channel 2 has no final block yet (17 blocks)"]
        assert session_gaps(session_item(session | {"NumChannels": 3}, files, ROOT))[-1].startswith("channel 3")

    def test_a_session_without_its_dates_is_refused(self) -> None:
        session, files = real_session()
        del session["DownlinkStart"]
        with pytest.raises(ODataEntityError, match="DownlinkStart"):
            session_item(session, files, ROOT)


class TestProduct:
    def test_prip_product(self) -> None:
        item = product_item("prip", product(), ROOT)
        assert item["id"] == "S1C_IW_SLC__1SDV_20250101T000000_20250101T000025_000001_000001_0001.SAFE"
        assert item["bbox"] == [10, 40, 12, 42]
        p = item["properties"]
        assert (p["product:type"], p["platform"], p["sat:orbit_state"]) == ("S01SIWSLC", "sentinel-1c", "descending")
        assert (p["created"], p["prip:id"]) == ("2025-01-01T02:00:00.123Z", product()["Id"])
        (name, asset), *_ = item["assets"].items()
        assert name == product()["Name"] and asset["roles"] == ["data", "metadata"]
        assert (asset["file:size"], asset["file:checksum"]) == (4096, "d50110" + MD5)

    def test_auxip_product_keeps_its_name_and_media_type(self) -> None:
        item = product_item("auxip", product(Name="S1C_OPER_AUX_RESORB.EOF", ContentType="text/xml"), ROOT)
        assert item["id"] == "S1C_OPER_AUX_RESORB.EOF" and item["geometry"] is None
        assert item["properties"]["adgs:id"] == product()["Id"] and "sat:absolute_orbit" not in item["properties"]
        assert item["assets"]["S1C_OPER_AUX_RESORB.EOF"]["type"] == "text/xml"

    def test_satellites(self) -> None:
        assert satellite_of({"platformShortName": "SENTINEL-2", "platformSerialIdentifier": "B"}) == "S2B"
        assert satellite_of({"platformShortName": "SENTINEL-1"}) == "S1_"
        assert satellite_of({}) is None


@pytest.mark.parametrize(
    ("value", "expected"), [(12, 12), ("12", 12), (" 7 ", 7), (12.0, 12), ("1e3", None), (True, None), (None, None)]
)
def test_sizes(value: Any, expected: int | None) -> None:
    assert size_of(value) == expected


def test_checksums_other_than_md5_are_not_taken_for_one() -> None:
    assert md5_of({"Checksum": [{"Algorithm": "XXH", "Value": "1" * 16}, {"Algorithm": "md5", "Value": MD5}]}) == MD5
    assert md5_of({"Checksum": []}) is None and md5_of({}) is None
    assert md5_of({"Checksum": [{"Algorithm": "MD5", "Value": "not-hex"}]}) is None


def test_datetimes_of_any_precision_become_milliseconds_utc() -> None:
    assert iso_ms("2024-11-21T14:30:00Z") == "2024-11-21T14:30:00.000Z"
    assert iso_ms("2024-11-21T15:30:00.1234567+01:00") == "2024-11-21T14:30:00.123Z"
    assert odata_datetime(datetime(1, 2, 3, tzinfo=UTC)) == "0001-02-03T00:00:00.000Z"


class TestQueries:
    def test_valcover_becomes_a_product_type_and_date_prefilter(self) -> None:
        start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC)
        odata = products_filter(valcover_filter(start, end, "AUX_RESORB"))
        assert odata == (
            "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
            "att/OData.CSC.StringAttribute/Value eq 'AUX_RESORB') and "
            "ContentDate/Start le 2025-01-02T00:00:00.000Z and ContentDate/End ge 2025-01-01T00:00:00.000Z"
        )

    def test_what_odata_cannot_say_is_left_to_the_exact_filter(self) -> None:
        either = {"op": "or", "args": [{"op": "=", "args": [{"property": "platform"}, "sentinel-1a"]}] * 2}
        assert products_filter(either) is None
        mixed = {
            "op": "and",
            "args": [
                {"op": "=", "args": [{"property": "platform"}, "sentinel-1a"]},
                {"op": ">=", "args": [{"timestamp": "2025-01-01T00:00:00Z"}, {"property": "properties.created"}]},
            ],
        }
        assert products_filter(mixed) == "PublicationDate le 2025-01-01T00:00:00.000Z"

    @pytest.mark.parametrize("op", ["t_intersects", "t_during", "t_contains", "t_overlaps"])
    def test_the_prefilter_never_drops_a_product_the_filter_selects(self, op: str) -> None:
        """Items around a window: whatever the CQL2 filter selects, the OData prefilter keeps."""
        cql = {
            "op": op,
            "args": [
                {"interval": [{"property": "start_datetime"}, {"property": "end_datetime"}]},
                {"interval": ["2025-01-10T00:00:00Z", "2025-01-20T00:00:00Z"]},
            ],
        }
        clauses = products_filter(cql)
        assert clauses is not None
        start_le = datetime.fromisoformat(clauses.split("Start le ")[1].split(" ")[0])
        end_ge = datetime.fromisoformat(clauses.split("End ge ")[1])
        for first in range(1, 31, 3):
            for last in range(first, 31, 3):
                s, e = f"2025-01-{first:02d}T00:00:00Z", f"2025-01-{last:02d}T00:00:00Z"
                item = {"type": "Feature", "id": "x", "geometry": None, "properties": {"datetime": s}}
                item["properties"] |= {"start_datetime": s, "end_datetime": e}
                if cql2.Expr(cql).matches(item):
                    assert datetime.fromisoformat(s) <= start_le and datetime.fromisoformat(e) >= end_ge

    def test_order(self) -> None:
        assert products_orderby(None) == "PublicationDate desc,Name asc"
        assert products_orderby([{"field": "properties.start_datetime", "direction": "asc"}]).startswith(
            "ContentDate/Start asc"
        )
        with pytest.raises(InvalidInputError, match="cannot sort by 'eo:cloud_cover'"):
            products_orderby([{"field": "eo:cloud_cover", "direction": "asc"}])

    def test_session_filter_quotes_and_satellites(self) -> None:
        assert sessions_filter(["A'B"], ("S1A", "S1C")) == (
            "(SessionId eq 'A''B') and (Satellite eq 'S1A' or Satellite eq 'S1C')"
        )
