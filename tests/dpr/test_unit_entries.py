"""Tests of `build_unit_list` (docs/rs-compatibility.md#units) on small tables: modes, io entries, pipeline order
and external variables, including the cases of RS's own `tests/test_payload_builder.py` (rs-client-libraries)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from rs_ondemand.dpr import TaskTableError, build_unit_list
from tests.support.tasktables import minimal_tasktable, unit_list


class TestModes:
    @staticmethod
    def _modes_table() -> dict[str, Any]:
        names = ("always_p", "none_p", "nrt_p", "ntc_p")
        modes = ("always", None, "nrt", "ntc")
        items: list[dict[str, Any]] = [
            {"name": n, "mandatory": True} | ({"mode": m} if m else {}) for n, m in zip(names, modes, strict=True)
        ]
        return {
            "units": [
                {
                    "name": "flt",
                    "module": "pkg.flt",
                    "input_products": items,
                    "input_adfs": [{**item, "name": "adf_" + item["name"]} for item in items],
                    "output_products": [{"name": "out_nrt", "mode": "nrt", "mandatory": True}],
                }
            ],
            "io": [{"name": n, "type": "folder", "store_type": "safe"} for n in names],
            "pipelines": [
                {
                    "name": "p_full",
                    "steps": [
                        {"unit_name": "flt", "order": 1, "input_products": dict.fromkeys(names, "pipeline_input")}
                    ],
                }
            ],
        }

    @pytest.mark.parametrize(
        ("modes", "kept"),
        [
            (None, {"always_p", "none_p"}),
            ([], {"always_p", "none_p"}),
            (["always"], {"always_p", "none_p"}),
            (["nrt"], {"always_p", "none_p", "nrt_p"}),
            (["ntc"], {"always_p", "none_p", "ntc_p"}),
            (["nrt", "ntc"], {"always_p", "none_p", "nrt_p", "ntc_p"}),
            (["reprocessing"], {"always_p", "none_p"}),
        ],
    )
    def test_build_entries_filters_by_mode(self, modes: list[str] | None, kept: set[str]) -> None:
        """No mode keeps always/unset entries; a requested mode adds its entries, for inputs, ADFs and outputs."""
        (unit,) = build_unit_list(self._modes_table(), "p_full", None, modes, external_variables={})
        assert {e["name"] for e in unit["input_products"]} == kept
        assert {e["name"] for e in unit["input_adfs"]} == {"adf_" + name for name in kept}
        assert [e["name"] for e in unit["output_products"]] == (["out_nrt"] if "nrt_p" in kept else [])

    def test_mode_is_not_copied_to_entries(self) -> None:
        (unit,) = build_unit_list(self._modes_table(), "p_full", None, ["nrt"], external_variables={})
        assert all("mode" not in entry for entry in unit["input_products"])


class TestEntries:
    def test_dict_shaped_io_is_merged_like_a_list(self) -> None:
        """`io` as `{input[], adfs[], output[]}` (mockup of rs-client-libraries) gives the same entries as a list."""
        io_list = [
            {"name": "IN", "type": "folder", "engine": "cadu"},
            {"name": "OSF", "type": "file", "alternatives": []},
            {"name": "OUT", "type": "folder", "engine": "cpm_zarr"},
        ]
        units = [
            {
                "name": "u1",
                "module": "m",
                "input_products": [{"name": "IN", "mandatory": True}],
                "input_adfs": [{"name": "OSF", "mandatory": False}],
                "output_products": [{"name": "OUT", "mandatory": True}],
            }
        ]
        pipelines = [
            {
                "name": "p1",
                "steps": [
                    {
                        "unit_name": "u1",
                        "step_id": 1,
                        "input_products": {"IN": "pipeline_input"},
                        "output_products": {"OUT": "pipeline_output"},
                    }
                ],
            }
        ]
        as_dict = {"input": io_list[:1], "adfs": io_list[1:2], "output": io_list[2:]}
        expected = unit_list({"units": units, "pipelines": pipelines, "io": io_list})
        assert unit_list({"units": units, "pipelines": pipelines, "io": as_dict}) == expected
        assert expected[0]["input_products"][0] == {
            "name": "IN",
            "origin": "pipeline_input",
            "mandatory": True,
            "type": "folder",
            "engine": "cadu",
        }

    def test_adf_without_alternatives_is_kept_with_mandatory(self) -> None:
        """An ADF with no `alternatives` (S1 ARD `CONFIG`) is listed; the caller decides from `mandatory`."""
        tasktable = minimal_tasktable(
            units=[
                {
                    "name": "u1",
                    "module": "m",
                    "input_adfs": [{"name": "CONFIG", "mandatory": False}, {"name": "DEM", "mandatory": 1}],
                }
            ],
            io=[{"name": "CONFIG", "type": "filename"}],
        )
        assert unit_list(tasktable)[0]["input_adfs"] == [
            {"name": "CONFIG", "mandatory": False, "type": "filename"},
            {"name": "DEM", "mandatory": True},
        ]

    def test_alternatives_are_ordered_by_order_stably(self) -> None:
        """Alternatives come out by increasing `order`; ties keep their list order; no `order` goes last."""
        alternatives = [
            {"order": 3, "query": {"name": "q3"}},
            {"query": {"name": "none"}},
            {"order": 1, "query": {"name": "q1-a"}},
            {"order": 2, "query": {"name": "q2"}},
            {"order": 1, "query": {"name": "q1-b"}},
        ]
        tasktable = minimal_tasktable(
            units=[{"name": "u1", "module": "m", "input_adfs": [{"name": "A", "mandatory": True}]}],
            io=[{"name": "A", "alternatives": alternatives}],
        )
        (adf,) = unit_list(tasktable)[0]["input_adfs"]
        assert [a["query"]["name"] for a in adf["alternatives"]] == ["q1-a", "q1-b", "q2", "q3", "none"]
        assert tasktable["io"][0]["alternatives"][0]["query"]["name"] == "q3", "input untouched"

    def test_unit_extras_win_over_io_and_io_name_mandatory_are_ignored(self) -> None:
        tasktable = minimal_tasktable(
            units=[
                {
                    "name": "u1",
                    "module": "m",
                    "output_products": [{"name": "O", "mandatory": False, "regex": ".*", "apply_eoqc": True}],
                }
            ],
            io=[{"name": "O", "mandatory": True, "regex": "io", "type": "folder"}],
        )
        assert unit_list(tasktable)[0]["output_products"] == [
            {"name": "O", "mandatory": False, "regex": ".*", "apply_eoqc": True, "type": "folder"}
        ]

    def test_entries_that_are_not_named_dicts_are_skipped(self) -> None:
        tasktable = minimal_tasktable(
            units=[{"name": "u1", "module": "m", "input_products": ["x", {"mandatory": True}, {}]}]
        )
        assert unit_list(tasktable)[0]["input_products"] == []

    def test_last_io_description_of_a_name_wins(self) -> None:
        tasktable = minimal_tasktable(
            units=[{"name": "u1", "module": "m", "input_products": [{"name": "A", "mandatory": True}]}],
            io=[{"name": "A", "type": "first"}, {"name": "A", "type": "second"}],
        )
        assert unit_list(tasktable)[0]["input_products"][0]["type"] == "second"


class TestPipelines:
    @staticmethod
    def _chain() -> dict[str, Any]:
        """An S1-ARD-like chain (RS's `test_payload_builder.py`, case 8): dotted origins, `order` out of list
        order."""

        def unit(name: str, inputs: list[str], outputs: list[str]) -> dict[str, Any]:
            return {
                "name": name,
                "module": f"ard.{name}",
                "input_products": [{"name": n, "mandatory": False} for n in inputs],
                "input_adfs": [{"name": "CONFIG", "mandatory": False}],
                "output_products": [{"name": n, "mandatory": True} for n in outputs],
            }

        return {
            "units": [unit("calibration", ["cal_input"], ["cal_slcs"]), unit("geocoding", ["cal_slcs"], ["gslcs"])],
            "io": [],
            "pipelines": [
                {
                    "name": "ard",
                    "steps": [
                        {
                            "unit_name": "geocoding",
                            "order": 2,
                            "input_products": {"cal_slcs": "calibration.cal_slcs"},
                            "output_products": {"gslcs": "pipeline.output"},
                            "parameters": {
                                "window": "{external_variable.start_datetime}/{external_variable.end_datetime}"
                            },
                        },
                        {
                            "unit_name": "calibration",
                            "order": 1,
                            "input_products": {"cal_input": "pipeline.input"},
                            "output_products": {"cal_slcs": "pipeline.internal"},
                        },
                    ],
                }
            ],
        }

    def test_pipeline_units_are_ordered_and_chained(self) -> None:
        """Steps run by `order`; dotted pipeline origins are normalised, unit-chained origins are kept."""
        calibration, geocoding = unit_list(self._chain(), "ard")
        assert (calibration["name"], geocoding["name"]) == ("calibration", "geocoding")
        assert calibration["input_products"][0]["origin"] == "pipeline_input"
        assert calibration["output_products"][0]["origin"] == "pipeline_internal"
        assert geocoding["input_products"][0]["origin"] == "calibration.cal_slcs"
        assert geocoding["output_products"][0]["origin"] == "pipeline_output"
        assert "parameters" not in calibration
        assert geocoding["parameters"] == {"window": "2023-10-03T11:00:00.000Z/2025-10-03T11:00:00.000Z"}

    def test_steps_are_sorted_by_order_then_step_id(self) -> None:
        steps = [{"unit_name": u, "step_id": s, "order": o} for u, s, o in [("c", 1, 2), ("b", 2, 1), ("a", 1, 1)]]
        units = [{"name": n, "module": "m"} for n in "abc"]
        names = [
            u["name"] for u in unit_list({"units": units, "io": [], "pipelines": [{"name": "p1", "steps": steps}]})
        ]
        assert names == ["a", "b", "c"]

    def test_each_step_of_a_repeated_unit_keeps_its_own_origins(self) -> None:
        """A unit run twice gets each step's origins (the seed let the last step win for both)."""
        steps = [
            {"unit_name": "u1", "step_id": 1, "input_products": {"A": "pipeline_input"}},
            {"unit_name": "u1", "step_id": 2, "input_products": {"A": "u1.1.A"}},
        ]
        tasktable = minimal_tasktable(
            units=[
                {
                    "name": "u1",
                    "module": "m",
                    "input_products": [{"name": "A", "mandatory": True}],
                    "output_products": [{"name": "A", "mandatory": True}],
                }
            ],
            pipelines=[{"name": "p1", "steps": steps}],
        )
        units = unit_list(tasktable)
        assert [u["input_products"][0]["origin"] for u in units] == ["pipeline_input", "u1.1.A"]
        # Each step is a unit of its own for EOPF; the second reads the first's output.
        assert [u["id"] for u in units] == ["u1.1", "u1.2"]
        assert units[1]["input_products"][0]["reference"] == "u1.1.A"

    def test_unit_mode_takes_origins_from_the_first_step_using_it(self) -> None:
        (geocoding,) = unit_list(self._chain(), None, "geocoding")
        assert geocoding["input_products"][0]["origin"] == "calibration.cal_slcs"
        assert geocoding["output_products"][0]["origin"] == "pipeline_output"

    def test_entry_without_origin_in_step_has_no_origin_key(self) -> None:
        tasktable = minimal_tasktable(
            units=[{"name": "u1", "module": "m", "input_products": [{"name": "A", "mandatory": True}]}]
        )
        assert unit_list(tasktable)[0]["input_products"] == [{"name": "A", "mandatory": True}]


class TestExternalVariables:
    @staticmethod
    def _with_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
        return minimal_tasktable(
            units=[{"name": "u1", "module": "m", "input_adfs": [{"name": "A", "mandatory": True}]}],
            io=[{"name": "A", "alternatives": [{"order": 1, "query": {"name": "q", "parameters": parameters}}]}],
        )

    def _parameters(self, parameters: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
        units = build_unit_list(self._with_parameters(parameters), "p1", None, None, external_variables=variables)
        result: dict[str, Any] = units[0]["input_adfs"][0]["alternatives"][0]["query"]["parameters"]
        return result

    def test_generic_variables_anywhere_in_strings(self) -> None:
        parameters = {
            "exact": "{external_variable.orbit}",
            "inside": "S1-{external_variable.orbit}-{external_variable.satellite}",
            "start_datetime": "{external_variable.start_datetime}",
            "plain": 7,
        }
        variables = {"orbit": 42, "satellite": "S1A", "start_datetime": "2023-10-03T13:00:00+02:00"}
        assert self._parameters(parameters, variables) == {
            "exact": 42,
            "inside": "S1-42-S1A",
            "start_datetime": "2023-10-03T11:00:00.000Z",
            "plain": 7,
        }

    @pytest.mark.parametrize(
        "value",
        [
            datetime(2023, 10, 3, 11, 0, 0, 123456, tzinfo=UTC),
            datetime(2023, 10, 3, 11, 0, 0, 123456),
            "2023-10-03T11:00:00.123Z",
        ],
    )
    def test_datetimes_use_the_rs_millisecond_format(self, value: Any) -> None:
        parameters = {"a": "{external_variable.reference_date}", "b": "{external_variable.start_datetime}"}
        variables = {"reference_date": value, "start_datetime": value}
        result = self._parameters(parameters, variables)
        assert result["b"] == "2023-10-03T11:00:00.123Z"
        # A datetime object is formatted whatever its name; a string only when the name says "datetime".
        assert result["a"] == ("2023-10-03T11:00:00.123Z" if isinstance(value, datetime) else value)

    def test_missing_or_none_variables_stay_placeholders(self) -> None:
        parameters = {"satellite": "{external_variable.satellite}", "x": "a-{external_variable.nope}"}
        assert self._parameters(parameters, {"satellite": None}) == parameters

    def test_bad_datetime_variable_is_reported(self) -> None:
        with pytest.raises(TaskTableError) as caught:
            self._parameters({"s": "{external_variable.start_datetime}"}, {"start_datetime": "yesterday"})
        assert str(caught.value) == "External variable \"start_datetime\" is not a datetime: 'yesterday'"

    def test_output_does_not_alias_the_task_table(self) -> None:
        tasktable = self._with_parameters({"p": [1, {"q": 2}]})
        pristine = copy.deepcopy(tasktable)
        units = build_unit_list(tasktable, "p1", None, None, external_variables={})
        units[0]["input_adfs"][0]["alternatives"][0]["query"]["parameters"]["p"][1]["q"] = 99
        assert tasktable == pristine
