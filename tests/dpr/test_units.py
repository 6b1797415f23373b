"""Tests of `build_unit_list` (docs/rs-compatibility.md#units) on RS's reference tables, and its errors, including
the cases of RS's own `tests/test_payload_builder.py` (rs-client-libraries). Modes, io entries, pipeline order
and external variables: test_unit_entries.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rs_ondemand.dpr import TaskTableError, build_unit_list, stac_query
from tests.support.tasktables import (
    RS_TASKTABLES,
    UNIT_VARIABLES,
    load,
    minimal_tasktable,
    s1_l0_request_variables,
    unit_list,
)

UNIT_KEYS = ("name", "module", "input_products", "input_adfs", "output_products")
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
            external_variables=UNIT_VARIABLES,
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
        assert unit_list(tasktable, "s1_l0_full") == from_strings

    def test_dict_shaped_io_of_the_2_0minimal_tasktable(self) -> None:
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
                minimal_tasktable(pipelines=None),
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
                minimal_tasktable(units={}),
                "p1",
                None,
                'Missing or invalid "units" list in task table.',
                id="units-dict",
            ),
            pytest.param(
                {"pipelines": [], "units": []}, "p1", None, 'Missing or invalid "io" list in task table.', id="io"
            ),
            pytest.param(
                minimal_tasktable(io="x"), "p1", None, 'Missing or invalid "io" list in task table.', id="io-str"
            ),
            pytest.param(
                minimal_tasktable(io={"input": [], "adfs": {}}),
                "p1",
                None,
                'Invalid "io" section "adfs" in task table: expected a list.',
                id="io-dict-section",
            ),
            pytest.param(
                minimal_tasktable(units=[{"module": "m"}, "u"]),
                "p1",
                None,
                'No valid unit entries found in "units".',
                id="no-unit",
            ),
            pytest.param(minimal_tasktable(), "p1", "u1", 'Provide either "pipeline" or "unit", not both.', id="both"),
            pytest.param(
                minimal_tasktable(), None, None, 'One of "pipeline" or "unit" must be provided.', id="neither"
            ),
            pytest.param(
                minimal_tasktable(),
                None,
                "ghost",
                "Unit \"ghost\" not found in \"units\". Available units: 'u1', 'u2'.",
                id="unknown-unit",
            ),
            pytest.param(
                minimal_tasktable(),
                "ghost",
                None,
                'Pipeline "ghost" not found. Available pipelines: "p1", "p2"',
                id="unknown-pipeline",
            ),
            pytest.param(
                minimal_tasktable(pipelines=[]),
                "ghost",
                None,
                'Pipeline "ghost" not found. Available pipelines: "<none>"',
                id="no-pipelines",
            ),
            pytest.param(
                minimal_tasktable(),
                None,
                "u2",
                'No pipeline step found for unit "u2" to derive origins.',
                id="unit-without-step",
            ),
            pytest.param(
                minimal_tasktable(pipelines=[{"name": "p1", "steps": []}]),
                "p1",
                None,
                'Pipeline "p1" has no steps.',
                id="no-steps",
            ),
            pytest.param(
                minimal_tasktable(pipelines=[{"name": "p1", "steps": [{"order": 1}]}]),
                "p1",
                None,
                'Pipeline "p1" steps do not contain valid "unit_name" entries.',
                id="steps-without-unit",
            ),
            pytest.param(
                minimal_tasktable(pipelines=[{"name": "p1", "steps": [{"unit_name": "zz"}]}]),
                "p1",
                None,
                'Unit "zz" not found in "units".',
                id="step-unknown-unit",
            ),
            pytest.param(
                minimal_tasktable(units=[{"name": "u1", "module": ""}]),
                "p1",
                None,
                'Unit "u1" is missing a valid "module" string.',
                id="no-module",
            ),
            pytest.param(
                minimal_tasktable(
                    units=[{"name": "u1", "module": "m", "input_adfs": [{"name": "OSF", "mode": "always"}]}]
                ),
                "p1",
                None,
                'Missing "mandatory" for item "OSF" in unit "u1".',
                id="no-mandatory",
            ),
            pytest.param(
                minimal_tasktable(units=[{"name": "u1", "module": "m", "input_products": {"a": 1}}]),
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
            unit_list(tasktable, pipeline, unit)
        assert str(caught.value) == message

    def test_task_table_error_is_a_non_retryable_value_error(self) -> None:
        """Callers catching ValueError (as the original's) still work; activities mark it non-retryable."""
        with pytest.raises(ValueError, match="root must be") as caught:
            unit_list([])
        assert caught.value.non_retryable is True  # type: ignore[attr-defined]

    def test_entry_filtered_out_by_mode_needs_no_mandatory(self) -> None:
        """The mode filter runs first: a dropped entry is not checked (seed order)."""
        tasktable = minimal_tasktable(
            units=[{"name": "u1", "module": "m", "input_adfs": [{"name": "X", "mode": "nrt"}]}]
        )
        assert unit_list(tasktable)[0]["input_adfs"] == []
        with pytest.raises(TaskTableError, match='Missing "mandatory" for item "X"'):
            unit_list(tasktable, modes=["nrt"])
