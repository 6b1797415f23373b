"""Every pipeline of the RS S1 ARD test table, planned from an RS-shaped request, passes EOPF 3.0's dry run: EOPF
imports the units (stand-ins written from the table), checks each step's inputs and ADFs against them, builds the
chain's graph (no cycle, every reference resolved), validates the `io` section and finds every input and ADF."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from rs_ondemand.dpr.payload import payload_yaml
from rs_ondemand.dpr.plan import plan_request
from tests.processors._stub_units import write_stub_units
from tests.support.s1_ard import PIPELINES, SLC_PROPERTIES, parsed, resolved_payload, tasktable

pytestmark = pytest.mark.timeout(300)

DRY_RUNS = """
import json, sys
from eopf.triggering.runner import EORunner
reports = {}
for payload in sys.argv[1:]:
    runner = EORunner()  # what `eopf trigger local` runs, once per payload (it resets EOPF's state)
    try:
        runner.run_from_file(payload)
        report = runner.get_report()
        reports[payload] = {"status": report.status, "outputs": report.output_ids, "units": len(report.units)}
    except Exception as err:
        reports[payload] = {"status": "error", "error": f"{type(err).__name__}: {err}"}
print("REPORTS " + json.dumps(reports))
"""


def test_every_pipeline_passes_eopf_dry_run(eopf_executable: Path, tmp_path: Path) -> None:
    """All five in one EOPF process (an EOPF start costs seconds): each payload is a run of its own."""
    stubs = write_stub_units(tasktable(), tmp_path / "stubs")
    slc = tmp_path / "in" / "slc.zarr"  # a `type: file` input: the product itself
    slc.mkdir(parents=True)
    adfs = tmp_path / "aux"
    payloads = {}
    for pipeline in PIPELINES:
        plan = plan_request(parsed(pipeline), tasktable(), {"slcs": SLC_PROPERTIES})
        payload = resolved_payload(plan, str(slc), str(adfs), str(tmp_path / "out"))
        for adf in payload["io"]["adfs"]:
            # Local stand-ins (the supplied s3:// one too): a dry run only checks that each path exists.
            (adfs / adf["id"]).mkdir(parents=True, exist_ok=True)
            adf |= {"path": str(adfs / adf["id"]), "adf_params": {}}
        payload["general_configuration"]["triggering__dry_run"] = True
        folder = tmp_path / pipeline
        folder.mkdir()
        (folder / "payload.yaml").write_text(payload_yaml(payload))
        payloads[str(folder / "payload.yaml")] = payload

    done = subprocess.run(
        [eopf_executable.with_name("python"), "-c", DRY_RUNS, *payloads],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(stubs), "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("REPORTS "))
    reports = json.loads(line.removeprefix("REPORTS "))
    for path, payload in payloads.items():
        expected = {
            "status": "dry_run",
            "outputs": [entry["id"] for entry in payload["io"]["output_products"]],
            "units": 0,  # validated, none run
        }
        assert reports[path] == expected, (Path(path).parent.name, reports[path])
    assert not list((tmp_path / "out").glob("**/*.zarr"))  # nothing written
