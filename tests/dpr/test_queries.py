"""Tests of `stac_query` and `aux_collection` (docs/rs-compatibility.md#adf-queries, #adf-collection)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rs_ondemand.dpr import AuxCollectionError, QueryError, TaskTableError, aux_collection, build_unit_list, stac_query
from tests.support.tasktables import load, s1_l0_request_variables

SORTBY = [{"field": "created", "direction": "desc"}]
VALIDITY = {"interval": [{"property": "start_datetime"}, {"property": "end_datetime"}]}


def _s1_l0_adfs(table: str = "TaskTable_S1_L0_generated_by_rs_python_v1.json") -> dict[str, dict[str, Any]]:
    """The S1 L0 ADFs as `build_unit_list` gives them for the reference request, by name."""
    (unit,) = build_unit_list(load(table), "s1_l0_full", None, None, external_variables=s1_l0_request_variables())
    return {adf["name"]: adf for adf in unit["input_adfs"]}


def _query_of(adf: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    query = adf["alternatives"][0]["query"]
    return query["name"], query["parameters"]


def _filter(product_type: str, start: str, end: str) -> dict[str, Any]:
    return {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "product:type"}, product_type]},
            {"op": "=", "args": [{"property": "platform"}, "S1A"]},
            {"op": "t_contains", "args": [VALIDITY, {"interval": [start, end]}]},
        ],
    }


def _table(stac: dict[str, Any], name: str = "Q") -> dict[str, Any]:
    return {"queries": [{"name": name, "parameters": [], "stac": stac}]}


class TestStacQuery:
    @pytest.mark.parametrize(
        ("adf", "product_type", "start"),
        [
            ("OSF", "MPL_ORBSCT", "2023-10-03T11:00:00.000Z"),
            # dTa 345600 s: four days before the start.
            ("FRO", "MPL_ORBPRE", "2023-09-29T11:00:00.000Z"),
        ],
    )
    def test_s1_l0_adf_queries(self, adf: str, product_type: str, start: str) -> None:
        """Placeholders are substituted and the datetime arithmetic folded into standard CQL2-JSON."""
        tasktable = load("TaskTable_S1_L0_generated_by_rs_python_v1.json")
        name, parameters = _query_of(_s1_l0_adfs()[adf])
        assert stac_query(tasktable, name, parameters, adf=adf) == {
            "filter": _filter(product_type, start, "2025-10-03T11:00:00.000Z"),
            "sortby": SORTBY,
            "limit": 1,
        }

    def test_fro_start_minus_7200_seconds(self) -> None:
        """The S1 L0 table's FRO query: `{"op": "-", "args": [start, 7200]}` becomes start minus 2 h."""
        tasktable = load("tasktable_mockup_io_dict.json")
        parameters = {
            "product_type": "MPL_ORBRES",
            "start_datetime": "2023-10-03T11:00:00.000Z",
            "end_datetime": "2025-10-03T11:00:00.000Z",
            "dTa": 7200,
            "dTb": 0,
        }
        body = stac_query(tasktable, "LatestValCover", parameters, adf="FRO")
        assert body["filter"]["args"][1] == {
            "op": "t_contains",
            "args": [VALIDITY, {"interval": ["2023-10-03T09:00:00.000Z", "2025-10-03T11:00:00.000Z"]}],
        }

    def test_types_are_kept_and_the_task_table_is_not_modified(self) -> None:
        tasktable = _table({"filter": {"op": "=", "args": [{"property": "n"}, "{n}"]}, "limit": "{limit}"})
        pristine = copy.deepcopy(tasktable)
        assert stac_query(tasktable, "Q", {"n": 3, "limit": 5}) == {
            "filter": {"op": "=", "args": [{"property": "n"}, 3]},
            "limit": 5,
        }
        assert tasktable == pristine

    def test_the_last_query_of_a_name_wins(self) -> None:
        tasktable = {
            "queries": [
                {"name": "Q", "stac": {"limit": 1}},
                {"name": "Q", "stac": {"limit": 2}},
                {"name": "R", "stac": {"limit": 3}},
            ]
        }
        assert stac_query(tasktable, "Q", {}) == {"limit": 2}

    def test_timestamp_literal_and_nested_arithmetic_fold(self) -> None:
        after = {
            "op": "-",
            "args": [{"op": "+", "args": [{"timestamp": "{start}"}, 3600]}, 60.5],
        }
        body = stac_query(
            _table({"filter": {"op": "t_after", "args": [{"property": "datetime"}, after]}}),
            "Q",
            {"start": "2024-01-01T00:00:00Z"},
        )
        assert body["filter"]["args"][1] == {"timestamp": "2024-01-01T00:58:59.500Z"}

    def test_numeric_arithmetic_on_properties_is_left_alone(self) -> None:
        """CQL2's own arithmetic (numbers and properties) is standard and is not folded."""
        cql2_filter = {"op": ">", "args": [{"op": "+", "args": [{"property": "a"}, 1]}, 5]}
        assert stac_query(_table({"filter": cql2_filter}), "Q", {}) == {"filter": cql2_filter}

    def test_cql2_text_filter_is_validated_as_text(self) -> None:
        stac = {"filter-lang": "cql2-text", "filter": "platform = 'S1A'"}
        assert stac_query(_table(stac), "Q", {}) == stac

    def test_query_error_is_a_task_table_error(self) -> None:
        assert issubclass(QueryError, TaskTableError)
        assert issubclass(QueryError, ValueError)


class TestStacQueryErrors:
    def test_unknown_query(self) -> None:
        with pytest.raises(QueryError) as caught:
            stac_query(load("TaskTable_S1_L0_generated_by_rs_python_v1.json"), "Nope", {}, adf="OSF")
        assert str(caught.value) == (
            'ADF "OSF", query "Nope": not found in the task table. Available queries: "LatestValCover".'
        )

    @pytest.mark.parametrize(
        ("tasktable", "message"),
        [
            ({}, 'Query "Q": the task table has no "queries" list.'),
            ({"queries": []}, 'Query "Q": not found in the task table. Available queries: "<none>".'),
            ({"queries": [{"name": "Q"}]}, 'Query "Q": the query has no "stac" object.'),
        ],
    )
    def test_malformed_queries_section(self, tasktable: dict[str, Any], message: str) -> None:
        with pytest.raises(QueryError) as caught:
            stac_query(tasktable, "Q", {})
        assert str(caught.value) == message

    def test_leftover_placeholder(self) -> None:
        """A parameter the query needs but the alternative does not give is named, with the ADF."""
        tasktable = load("TaskTable_S1_L0_generated_by_rs_python_v1.json")
        name, parameters = _query_of(_s1_l0_adfs()["OSF"])
        del parameters["satellite"]
        with pytest.raises(QueryError) as caught:
            stac_query(tasktable, name, parameters, adf="OSF")
        assert str(caught.value) == (
            'ADF "OSF", query "LatestValCover": no value for "{satellite}" (parameters given: "product_type", '
            '"start_datetime", "end_datetime", "dTa", "dTb").'
        )

    @pytest.mark.parametrize("satellite", [None, "{external_variable.satellite}"])
    def test_missing_external_variable(self, satellite: str | None) -> None:
        """A request without satellite: a None value or the untouched external placeholder are both reported."""
        parameters = {"product_type": "X", "satellite": satellite}
        tasktable = _table({"filter": {"op": "=", "args": [{"property": "platform"}, "{satellite}"]}})
        with pytest.raises(QueryError, match=r'^ADF "A", query "Q": no value for "\{') as caught:
            stac_query(tasktable, "Q", parameters, adf="A")
        assert ("{external_variable.satellite}" in str(caught.value)) == (satellite is not None)

    @pytest.mark.parametrize(
        "operation",
        [
            {"op": "-", "args": ["2023-10-03T11:00:00Z", 7200, 1]},
            {"op": "-", "args": ["2023-10-03T11:00:00Z", "7200"]},
            {"op": "-", "args": ["2023-10-03T11:00:00Z", True]},
            {"op": "+", "args": [7200, "2023-10-03T11:00:00Z"]},
            {"op": "-", "args": ["yesterday", 7200]},
            {"op": "+", "args": ["9999-12-31T23:00:00Z", 7200]},
        ],
    )
    def test_malformed_arithmetic(self, operation: dict[str, Any]) -> None:
        cql2_filter = {"op": "t_after", "args": [{"property": "datetime"}, operation]}
        with pytest.raises(QueryError, match=r'^ADF "A", query "Q": cannot evaluate \{"op"'):
            stac_query(_table({"filter": cql2_filter}), "Q", {}, adf="A")

    @pytest.mark.parametrize(
        "cql2_filter",
        [
            {"op": "=", "args": [{"property": "platform"}]},
            {"op": "=", "args": [{"property": "platform"}, None]},
            {"foo": 1},
        ],
    )
    def test_cql2_rejects_the_filter(self, cql2_filter: dict[str, Any]) -> None:
        with pytest.raises(QueryError, match=r'^ADF "A", query "Q": the filter is not valid CQL2-JSON: '):
            stac_query(_table({"filter": cql2_filter}), "Q", {}, adf="A")

    def test_cql2_rejects_a_text_filter(self) -> None:
        with pytest.raises(QueryError, match="the filter is not valid CQL2-text"):
            stac_query(_table({"filter": "platform = = 'S1A'"}), "Q", {})


class TestAuxCollection:
    @pytest.mark.parametrize(
        ("product_type", "aux_map", "satellite", "expected"),
        [
            ("AX___OSF_AX", {"AX___OSF_AX": "ax___osf_ax", "*": "s1-aux"}, None, "ax___osf_ax"),
            ("AX___FRO_AX", {"AX___OSF_AX": "ax___osf_ax", "*": "s1-aux"}, "S1A", "s1-aux"),
            ("MPL_ORBSCT", {"AX___OSF_AX": "ax___osf_ax"}, "S1A", "S1A-aux-MPL_ORBSCT"),
            (None, {"*": "s1-aux"}, None, "s1-aux"),
        ],
    )
    def test_collection_rules(
        self, product_type: str | None, aux_map: dict[str, str], satellite: str | None, expected: str
    ) -> None:
        """map[product_type], then map["*"], then "<satellite>-aux-<product_type>"."""
        assert aux_collection(product_type, aux_map, satellite) == expected

    def test_no_satellite_to_derive_the_collection(self) -> None:
        with pytest.raises(AuxCollectionError, match=r'product type "MPL_ORBSCT".*no satellite is given'):
            aux_collection("MPL_ORBSCT", {"OTHER": "x"}, None)

    def test_no_product_type_and_no_wildcard(self) -> None:
        with pytest.raises(AuxCollectionError, match='without "product_type"'):
            aux_collection(None, {"OTHER": "x"}, "S1A")

    def test_error_is_a_non_retryable_value_error(self) -> None:
        with pytest.raises(ValueError) as caught:
            aux_collection("X", {}, "")
        assert caught.value.non_retryable is True  # type: ignore[attr-defined]
