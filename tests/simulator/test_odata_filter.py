"""The OData `$filter` parser and evaluator, without a server."""

from typing import Any

import pytest

from rs_simulator.odata_eval import evaluate
from rs_simulator.odata_filter import ODataFilterError, parse_filter

FIELDS = {
    "Id",
    "Name",
    "Satellite",
    "PublicationDate",
    "ContentDate/Start",
    "ContentDate/End",
    "Size",
    "Online",
    "Attributes",
}
ENTITY: dict[str, Any] = {
    "Id": "a",
    "Name": "S1A_OPER_AUX_RESORB_OPOD_x.EOF",
    "Satellite": "S1A",
    "PublicationDate": "2024-11-14T14:31:11.032Z",
    "ContentDate": {"Start": "2024-11-14T00:00:00.000Z", "End": "2024-11-15T00:00:00Z"},
    "Size": 1024,
    "Online": True,
    "Attributes": [
        {
            "@odata.type": "#OData.CSC.StringAttribute",
            "Name": "productType",
            "ValueType": "String",
            "Value": "AUX_RESORB",
        },
        {"@odata.type": "#OData.CSC.IntegerAttribute", "Name": "orbitNumber", "ValueType": "Integer", "Value": 56552},
        {"@odata.type": "#OData.CSC.DoubleAttribute", "Name": "cloudCover", "ValueType": "Double", "Value": 12.5},
        {
            "@odata.type": "#OData.CSC.BooleanAttribute",
            "Name": "sliceProductFlag",
            "ValueType": "Boolean",
            "Value": False,
        },
    ],
}


def matches(text: str) -> bool:
    return bool(evaluate(parse_filter(text, FIELDS, {"SessionID": "Id"}), ENTITY))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Satellite eq 'S1A'", True),
        ("Satellite ne 'S1A'", False),
        ("Satellite in ('S1B', 'S1A')", True),
        ("Satellite in (S1B, S1C)", False),
        ("SessionID eq 'a'", True),
        ("Size gt 1000 and Size le 1024", True),
        ("Size lt 1000 or Online eq true", True),
        ("Size lte 1023", False),
        ("Satellite eq 'S2B' or Satellite eq 'S1A' and Size eq 0", False),  # and binds tighter than or
        ("(Satellite eq 'S2B' or Satellite eq 'S1A') and Size eq 1024", True),
        ("not (Size eq 1024)", False),
        ("PublicationDate gt 2024-11-14T14:31:11Z", True),  # 11.032 s is after 11 s, whatever the spelling
        ("PublicationDate lt 2024-11-14", False),
        ("PublicationDate gt '2024-11-14T14:31:11Z'", True),  # quoted: still compared as instants
        ("ContentDate/Start le 2024-11-14T00:00:00Z and ContentDate/End ge 2024-11-14T23:59:59.999Z", True),
        ("contains(Name,'RESORB') and startswith(Name,'S1A_') and endswith(Name,'.EOF')", True),
        ("contains(tolower(Name),'resorb')", True),
        ("Name eq 'it''s'", False),
        (
            "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' "
            "and att/OData.CSC.StringAttribute/Value eq 'AUX_RESORB')",
            True,
        ),
        (
            "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'orbitNumber' "
            "and att/OData.CSC.StringAttribute/Value eq 56552)",
            False,  # the integer attribute is not a StringAttribute
        ),
        (
            "Attributes/OData.CSC.IntegerAttribute/any(att:att/Name eq 'orbitNumber' "
            "and att/OData.CSC.IntegerAttribute/Value ge 56552)",
            True,
        ),
        ("Attributes/OData.CSC.DoubleAttribute/any(a:a/Name eq 'cloudCover' and a/Value lt 20.0)", True),
        ("Attributes/OData.CSC.BooleanAttribute/any(a:a/Name eq 'sliceProductFlag' and a/Value eq false)", True),
        ("Attributes/any(a:a/Name eq 'productType')", True),
        ("Attributes/all(a:a/Name ne 'missing')", True),
    ],
)
def test_evaluation(text: str, expected: bool) -> None:
    assert matches(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "Unknown eq 1",
        "Satellite eq",
        "Satellite eq 'S1A' and",
        "(Satellite eq 'S1A'",
        "Satellite eq 'S1A')",
        "year(PublicationDate) eq 2024",
        "Satellite eq 'S1A' # comment",
        "Nope/any(a:a/Name eq 'x')",
        "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((0 0, 1 0, 1 1, 0 0))')",  # no GeoFootprint here
    ],
)
def test_rejections(text: str) -> None:
    with pytest.raises(ODataFilterError):
        parse_filter(text, FIELDS)
