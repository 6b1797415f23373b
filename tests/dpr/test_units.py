"""Tests of `build_unit_list` (docs/rs-compatibility.md#units), including the cases of RS's own
`tests/test_payload_builder.py` (rs-client-libraries)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from rs_ondemand.dpr import TaskTableError, build_unit_list, stac_query
from tests.support.tasktables import RS_TASKTABLES, load, s1_l0_request_variables

UNIT_KEYS = ("name", "module", "input_products", "input_adfs", "output_products")
VARIABLES = {
    "start_datetime": datetime(2023, 10, 3, 11, tzinfo=UTC),
    "end_datetime": datetime(2025, 10, 3, 11, tzinfo=UTC),
    "satellite": "S1A",
}
MODE_SETS: list[list[str] | None] = [
    None,
    [],
    ["always"],
    ["nrt"],
    ["ntc"],
    ["reprocessing"],
    ["subs"],
    ["nrt", "ntc", "reprocessing", "subs", "always"],
]


def _selections() -> list[tuple[str, str, str]]:
    """(table, "pipeline"|"unit", name) for every pipeline and every unit of every reference table."""
    found = []
    for table in RS_TASKTABLES:
        tasktable = load(table)
        found += [(table, "pipeline", p["name"]) for p in tasktable["pipelines"]]
        found += [(table, "unit", u["name"]) for u in tasktable["units"]]
    return found


def _table(**overrides: Any) -> dict[str, Any]:
    """A minimal valid table: pipeline p1 runs u1; u2 is in no pipeline."""
    tasktable: dict[str, Any] = {
        "pipelines": [
            {
                "name": "p1",
                "steps": [{"unit_name": "u1", "order": 1, "input_products": {}, "output_products": {}}],
            },
            {"name": "p2", "steps": [{"unit_name": "u1", "order": 1}]},
        ],
        "units": [
            {"name": "u1", "module": "mod.u1", "input_products": [], "input_adfs": [], "output_products": []},
            {"name": "u2", "module": "mod.u2", "input_products": [], "input_adfs": [], "output_products": []},
        ],
        "io": [],
    }
    tasktable.update(overrides)
    return tasktable


def _run(tasktable: Any, pipeline: str | None = "p1", unit: str | None = None, modes: Any = None) -> list[Any]:
    return build_unit_list(tasktable, pipeline, unit, modes, external_variables=VARIABLES)


class TestReferenceTables:
    @pytest.mark.parametrize("modes", MODE_SETS, ids=lambda m: "-".join(m) if m is not None else "none")
    @pytest.mark.parametrize(("table", "kind", "name"), _selections())
    def test_build_unit_list_on_every_rs_table(self, table: str, kind: str, name: str, modes: list[str] | None) -> None:
        """Every pipeline and unit of every RS task table builds, with the original's keys, in every mode."""
        tasktable = load(table)
        pristine = copy.deepcopy(tasktable)
        units = build_unit_list(
            tasktable,
            name if kind == "pipeline" else None,
            name if kind == "unit" else None,
            modes,
            external_variables=VARIABLES,
        )

        assert tasktable == pristine, "the task table must not be modified"
        assert units and all(isinstance(u, dict) for u in units)
        for unit in units:
            assert set(UNIT_KEYS) <= set(unit)
            assert isinstance(unit["module"], str)
            for entry in unit["input_products"] + unit["output_products"]:
                assert entry["origin"].startswith("pipeline_") or "." in entry["origin"]
                assert isinstance(entry["mandatory"], bool)
            for adf in unit["input_adfs"]:
                assert "origin" not in adf
                assert isinstance(adf["mandatory"], bool)
                orders = [alt["order"] for alt in adf.get("alternatives", [])]
                assert orders == sorted(orders)
                for alt in adf.get("alternatives", []):
                    # Every reference ADF query becomes a valid, standard STAC search body.
                    body = stac_query(tasktable, alt["query"]["name"], alt["query"]["parameters"], adf=adf["name"])
                    assert set(body) == {"filter", "sortby", "limit"}
            assert "{external_variable." not in str(unit)

    def test_s1_l0_full_exact_output(self) -> None:
        """S1 L0, pipeline s1_l0_full, no mode: the exact units, datetimes as in the reference request."""
        units = build_unit_list(
            load("TaskTable_S1_L0_generated_by_rs_python_v1.json"),
            "s1_l0_full",
            None,
            None,
            external_variables=s1_l0_request_variables(),
        )

        def adf(name: str, product_type: str, dta: int) -> dict[str, Any]:
            parameters = {
                "product_type": product_type,
                "start_datetime": "2023-10-03T11:00:00.000Z",
                "end_datetime": "2025-10-03T11:00:00.000Z",
                "satellite": "S1A",
                "dTa": dta,
                "dTb": 0,
            }
            return {
                "name": name,
                "mandatory": False,
                "type": "filename",
                "store_type": "safe",
                "alternatives": [
                    {"order": 1, "timeout_seconds": 0, "query": {"name": "LatestValCover", "parameters": parameters}}
                ],
            }

        def output(name: str, regex: str) -> dict[str, Any]:
            return {
                "name": name,
                "origin": "pipeline_output",
                "mandatory": False,
                "regex": regex,
                "type": "folder",
                "store_type": "zarr",
                "opening_mode": "CREATE_OVERWRITE",
            }

        assert units == [
            {
                "name": "S1L0Processor",
                "module": "l0.s1.s1_l0_processor",
                "input_products": [
                    {
                        "name": "S1CADUS",
                        "origin": "pipeline_input",
                        "mandatory": True,
                        "type": "filename",
                        "store_type": "cadu",
                    }
                ],
                "input_adfs": [adf("OSF", "MPL_ORBSCT", 0), adf("FRO", "MPL_ORBPRE", 345600)],
                "output_products": [
                    output("S01SARRAW", "^datatakeid_.*"),
                    output("S01GPSRAW", "^gps$"),
                    output("S01HKMRAW", "^hktm$"),
                    output("S01AISRAW", "^ais_.*"),
                ],
                "id": "S1L0Processor.1",
            }
        ]
        # The original's key order (name, origin, mandatory, unit extras, io keys) shows in the JSON output.
        assert list(units[0]["output_products"][0]) == [
            "name",
            "origin",
            "mandatory",
            "regex",
            "type",
            "store_type",
            "opening_mode",
        ]

    def test_s1_l0_datetime_objects_give_the_same_units(self) -> None:
        """Datetime objects (as the original test passes them) and the request's ISO strings agree."""
        tasktable = load("TaskTable_S1_L0_generated_by_rs_python_v1.json")
        from_strings = build_unit_list(
            tasktable, "s1_l0_full", None, None, external_variables=s1_l0_request_variables()
        )
        assert _run(tasktable, "s1_l0_full") == from_strings

    def test_dict_shaped_io_of_the_2_0_table(self) -> None:
        """The 2.0 draft S1 L0 table (`io` as an object) builds: engines, writer params and step parameters."""
        (unit,) = build_unit_list(
            load("tasktable-s1-l0.json"), "s1_l0_full", None, ["always"], external_variables=s1_l0_request_variables()
        )
        assert unit["input_products"] == [
            {"name": "S1CADUS", "origin": "pipeline_input", "mandatory": True, "type": "folder", "engine": "cadu"}
        ]
        assert [(a["name"], a["engine"]) for a in unit["input_adfs"]] == [("osf", "cpm_safe"), ("fro", "cpm_safe")]
        assert unit["input_adfs"][1]["alternatives"][0]["query"]["parameters"] == {
            "product_type": "AX___FRO_AX",
            "start_datetime": "2023-10-03T11:00:00.000Z",
            "end_datetime": "2025-10-03T11:00:00.000Z",
            "satellite": "S1A",
            "dTa": 345600,
            "dTb": 0,
        }
        assert [(o["name"], o["regex"], o["writer_params"]["mode"]) for o in unit["output_products"]] == [
            ("S01SARRAW", "^datatakeid_.*", "w"),
            ("S01GPSRAW", "^gps$", "w"),
            ("S01HKMRAW", "^hktm$", "w"),
            ("S01AISRAW", "^ais_.*", "w"),
        ]
        assert unit["parameters"] == {
            "streaming_mode": False,
            "temporary_path": "./tmp",
            "isp_extraction_batch_size": 5,
            "acquisition_report_output_path": "./acq_report",
            "test_external_variable": "S1A",
        }


class TestErrors:
    @pytest.mark.parametrize(
        ("tasktable", "pipeline", "unit", "message"),
        [
            pytest.param("not a dict", "p1", None, "Task table root must be a JSON object (dict).", id="root"),
            pytest.param(
                _table(pipelines=None),
                "p1",
                None,
                'Missing or invalid "pipelines" list in task table.',
                id="pipelines-invalid",
            ),
            pytest.param(
                {"units": [], "io": []},
                "p1",
                None,
                'Missing or invalid "pipelines" list in task table.',
                id="pipelines",
            ),
            pytest.param(
                {"pipelines": [], "io": []}, "p1", None, 'Missing or invalid "units" list in task table.', id="units"
            ),
            pytest.param(
                _table(units={}), "p1", None, 'Missing or invalid "units" list in task table.', id="units-dict"
            ),
            pytest.param(
                {"pipelines": [], "units": []}, "p1", None, 'Missing or invalid "io" list in task table.', id="io"
            ),
            pytest.param(_table(io="x"), "p1", None, 'Missing or invalid "io" list in task table.', id="io-str"),
            pytest.param(
                _table(io={"input": [], "adfs": {}}),
                "p1",
                None,
                'Invalid "io" section "adfs" in task table: expected a list.',
                id="io-dict-section",
            ),
            pytest.param(
                _table(units=[{"module": "m"}, "u"]),
                "p1",
                None,
                'No valid unit entries found in "units".',
                id="no-unit",
            ),
            pytest.param(_table(), "p1", "u1", 'Provide either "pipeline" or "unit", not both.', id="both"),
            pytest.param(_table(), None, None, 'One of "pipeline" or "unit" must be provided.', id="neither"),
            pytest.param(
                _table(),
                None,
                "ghost",
                "Unit \"ghost\" not found in \"units\". Available units: 'u1', 'u2'.",
                id="unknown-unit",
            ),
            pytest.param(
                _table(),
                "ghost",
                None,
                'Pipeline "ghost" not found. Available pipelines: "p1", "p2"',
                id="unknown-pipeline",
            ),
            pytest.param(
                _table(pipelines=[]),
                "ghost",
                None,
                'Pipeline "ghost" not found. Available pipelines: "<none>"',
                id="no-pipelines",
            ),
            pytest.param(
                _table(),
                None,
                "u2",
                'No pipeline step found for unit "u2" to derive origins.',
                id="unit-without-step",
            ),
            pytest.param(
                _table(pipelines=[{"name": "p1", "steps": []}]),
                "p1",
                None,
                'Pipeline "p1" has no steps.',
                id="no-steps",
            ),
            pytest.param(
                _table(pipelines=[{"name": "p1", "steps": [{"order": 1}]}]),
                "p1",
                None,
                'Pipeline "p1" steps do not contain valid "unit_name" entries.',
                id="steps-without-unit",
            ),
            pytest.param(
                _table(pipelines=[{"name": "p1", "steps": [{"unit_name": "zz"}]}]),
                "p1",
                None,
                'Unit "zz" not found in "units".',
                id="step-unknown-unit",
            ),
            pytest.param(
                _table(units=[{"name": "u1", "module": ""}]),
                "p1",
                None,
                'Unit "u1" is missing a valid "module" string.',
                id="no-module",
            ),
            pytest.param(
                _table(units=[{"name": "u1", "module": "m", "input_adfs": [{"name": "OSF", "mode": "always"}]}]),
                "p1",
                None,
                'Missing "mandatory" for item "OSF" in unit "u1".',
                id="no-mandatory",
            ),
            pytest.param(
                _table(units=[{"name": "u1", "module": "m", "input_products": {"a": 1}}]),
                "p1",
                None,
                'Unit "u1": "input_products" must be a list.',
                id="entries-not-list",
            ),
        ],
    )
    def test_build_unit_list_error_messages(
        self, tasktable: Any, pipeline: str | None, unit: str | None, message: str
    ) -> None:
        """Each malformed table or selection fails with the original's exact message."""
        with pytest.raises(TaskTableError) as caught:
            _run(tasktable, pipeline, unit)
        assert str(caught.value) == message

    def test_task_table_error_is_a_non_retryable_value_error(self) -> None:
        """Callers catching ValueError (as the original's) still work; activities mark it non-retryable."""
        with pytest.raises(ValueError, match="root must be") as caught:
            _run([])
        assert caught.value.non_retryable is True  # type: ignore[attr-defined]

    def test_entry_filtered_out_by_mode_needs_no_mandatory(self) -> None:
        """The mode filter runs first: a dropped entry is not checked (seed order)."""
        tasktable = _table(units=[{"name": "u1", "module": "m", "input_adfs": [{"name": "X", "mode": "nrt"}]}])
        assert _run(tasktable)[0]["input_adfs"] == []
        with pytest.raises(TaskTableError, match='Missing "mandatory" for item "X"'):
            _run(tasktable, modes=["nrt"])


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
        expected = _run({"units": units, "pipelines": pipelines, "io": io_list})
        assert _run({"units": units, "pipelines": pipelines, "io": as_dict}) == expected
        assert expected[0]["input_products"][0] == {
            "name": "IN",
            "origin": "pipeline_input",
            "mandatory": True,
            "type": "folder",
            "engine": "cadu",
        }

    def test_adf_without_alternatives_is_kept_with_mandatory(self) -> None:
        """An ADF with no `alternatives` (S1 ARD `CONFIG`) is listed; the caller decides from `mandatory`."""
        tasktable = _table(
            units=[
                {
                    "name": "u1",
                    "module": "m",
                    "input_adfs": [{"name": "CONFIG", "mandatory": False}, {"name": "DEM", "mandatory": 1}],
                }
            ],
            io=[{"name": "CONFIG", "type": "filename"}],
        )
        assert _run(tasktable)[0]["input_adfs"] == [
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
        tasktable = _table(
            units=[{"name": "u1", "module": "m", "input_adfs": [{"name": "A", "mandatory": True}]}],
            io=[{"name": "A", "alternatives": alternatives}],
        )
        (adf,) = _run(tasktable)[0]["input_adfs"]
        assert [a["query"]["name"] for a in adf["alternatives"]] == ["q1-a", "q1-b", "q2", "q3", "none"]
        assert tasktable["io"][0]["alternatives"][0]["query"]["name"] == "q3", "input untouched"

    def test_unit_extras_win_over_io_and_io_name_mandatory_are_ignored(self) -> None:
        tasktable = _table(
            units=[
                {
                    "name": "u1",
                    "module": "m",
                    "output_products": [{"name": "O", "mandatory": False, "regex": ".*", "apply_eoqc": True}],
                }
            ],
            io=[{"name": "O", "mandatory": True, "regex": "io", "type": "folder"}],
        )
        assert _run(tasktable)[0]["output_products"] == [
            {"name": "O", "mandatory": False, "regex": ".*", "apply_eoqc": True, "type": "folder"}
        ]

    def test_entries_that_are_not_named_dicts_are_skipped(self) -> None:
        tasktable = _table(units=[{"name": "u1", "module": "m", "input_products": ["x", {"mandatory": True}, {}]}])
        assert _run(tasktable)[0]["input_products"] == []

    def test_last_io_description_of_a_name_wins(self) -> None:
        tasktable = _table(
            units=[{"name": "u1", "module": "m", "input_products": [{"name": "A", "mandatory": True}]}],
            io=[{"name": "A", "type": "first"}, {"name": "A", "type": "second"}],
        )
        assert _run(tasktable)[0]["input_products"][0]["type"] == "second"


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
        calibration, geocoding = _run(self._chain(), "ard")
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
        names = [u["name"] for u in _run({"units": units, "io": [], "pipelines": [{"name": "p1", "steps": steps}]})]
        assert names == ["a", "b", "c"]

    def test_each_step_of_a_repeated_unit_keeps_its_own_origins(self) -> None:
        """A unit run twice gets each step's origins (the seed let the last step win for both)."""
        steps = [
            {"unit_name": "u1", "step_id": 1, "input_products": {"A": "pipeline_input"}},
            {"unit_name": "u1", "step_id": 2, "input_products": {"A": "u1.1.A"}},
        ]
        tasktable = _table(
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
        units = _run(tasktable)
        assert [u["input_products"][0]["origin"] for u in units] == ["pipeline_input", "u1.1.A"]
        # Each step is a unit of its own for EOPF; the second reads the first's output.
        assert [u["id"] for u in units] == ["u1.1", "u1.2"]
        assert units[1]["input_products"][0]["reference"] == "u1.1.A"

    def test_unit_mode_takes_origins_from_the_first_step_using_it(self) -> None:
        (geocoding,) = _run(self._chain(), None, "geocoding")
        assert geocoding["input_products"][0]["origin"] == "calibration.cal_slcs"
        assert geocoding["output_products"][0]["origin"] == "pipeline_output"

    def test_entry_without_origin_in_step_has_no_origin_key(self) -> None:
        tasktable = _table(units=[{"name": "u1", "module": "m", "input_products": [{"name": "A", "mandatory": True}]}])
        assert _run(tasktable)[0]["input_products"] == [{"name": "A", "mandatory": True}]


class TestExternalVariables:
    @staticmethod
    def _with_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
        return _table(
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
