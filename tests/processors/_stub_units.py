"""Stand-ins for a processor's EOPF units, written from its task table: one class per unit of a module, declaring
the unit's mandatory inputs and ADFs (what EOPF checks before running), and refusing to run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

UNIT_CLASS = '''

class {name}(EOProcessingUnit):
    """Stand-in for the task table's unit {name!r}."""

    PROCESSOR_CONTRACT = False

    @classmethod
    def get_mandatory_input_list(cls, mode=None, **kwargs):
        return {inputs!r}

    @classmethod
    def get_mandatory_adf_list(cls, mode=None, **kwargs):
        return {adfs!r}

    def run(self, inputs, adfs=None, mode=None, **kwargs):
        raise NotImplementedError("a stand-in unit for dry runs")
'''


def write_stub_units(tasktable: dict[str, Any], root: Path) -> Path:
    """Write the packages of every unit module of `tasktable` under `root` (to put on PYTHONPATH); returns it."""
    modules: dict[str, list[str]] = {}
    for unit in tasktable["units"]:
        inputs = [entry["name"] for entry in unit.get("input_products", []) if entry.get("mandatory")]
        adfs = [entry["name"] for entry in unit.get("input_adfs", []) if entry.get("mandatory")]
        code = UNIT_CLASS.format(name=unit["name"], inputs=inputs, adfs=adfs)
        modules.setdefault(unit["module"], ["from eopf.computing.abstract import EOProcessingUnit\n"]).append(code)
    for module, parts in modules.items():
        path = root.joinpath(*module.split("."))
        for package in [root.joinpath(*module.split(".")[:depth]) for depth in range(1, module.count(".") + 1)]:
            package.mkdir(parents=True, exist_ok=True)
            (package / "__init__.py").touch()
        path.with_suffix(".py").write_text("".join(parts))
    return root
