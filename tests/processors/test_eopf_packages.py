"""Our code inside the EOPF venv: the CADU decoder against the simulator's reference decoder, the gateway label
rule, and the task table EOPF serves for the demo unit."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from rs_ondemand.config import Settings
from rs_ondemand.dpr.registry import TASKTABLES_DIR
from rs_simulator.cadu import CADU_BYTES, COUNTER_MODULO, CaduContent, decode_headers

pytestmark = pytest.mark.timeout(120)

DECODE = """
import json, sys
from dataclasses import asdict
from rs_demo_processor.cadu import as_table, combine, decode_stream, from_table, summarize
result = {}
for path in sys.argv[1:]:
    with open(path, "rb") as stream:
        headers = decode_stream(stream)
    good = headers[headers["sync_ok"]]
    result[path] = {
        "headers": [[int(h["scid"]), int(h["vcid"]), int(h["counter"])] for h in good],
        "summary": asdict(summarize(headers)),
        "table_round_trip": bool((from_table(as_table(headers)) == headers).all()),
    }
result["combined"] = asdict(combine(summarize(decode_stream(open(p, "rb"))) for p in sys.argv[1:]))
print(json.dumps(result))
"""


def run_in_eopf_venv(eopf_executable: Path, script: str, *args: str) -> Any:
    python = eopf_executable.with_name("python")
    done = subprocess.run([python, "-c", script, *args], capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def chunk(tmp_path: Path, name: str, size: int, channel: int, first_counter: int) -> tuple[Path, bytes]:
    data = CaduContent(size, "S1A", channel, first_counter, key=sum(name.encode()), seed=3).read(0, size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def test_decoder_matches_the_reference_decoder(eopf_executable: Path, tmp_path: Path) -> None:
    """Whole and cut frames (a 5-byte tail has no header), a counter wrapping at 2**24, a broken sync marker."""
    whole, whole_data = chunk(tmp_path, "a.raw", 40 * CADU_BYTES + 700, channel=1, first_counter=0)
    wrapped, wrapped_data = chunk(tmp_path, "b.raw", 8 * CADU_BYTES + 5, channel=2, first_counter=COUNTER_MODULO - 3)
    broken_data = bytearray(chunk(tmp_path, "c.raw", 10 * CADU_BYTES, channel=1, first_counter=41)[1])
    broken_data[5 * CADU_BYTES] ^= 0xFF  # frame 5 loses its sync marker
    broken = tmp_path / "c.raw"
    broken.write_bytes(bytes(broken_data))

    result = run_in_eopf_venv(eopf_executable, DECODE, str(whole), str(wrapped), str(broken))

    assert result[str(whole)]["headers"] == [list(h) for h in decode_headers(whole_data)]
    assert len(result[str(whole)]["headers"]) == 41  # the 700-byte tail still has a whole header
    assert result[str(wrapped)]["headers"] == [list(h) for h in decode_headers(wrapped_data)]
    assert len(result[str(wrapped)]["headers"]) == 8
    assert result[str(wrapped)]["summary"]["channels"]["2"] | {"frames": 0} == {
        "frames": 0,
        "first_counter": COUNTER_MODULO - 3,
        "last_counter": 4,
        "gaps": 0,  # the wrap is continuity, not a gap
        "missing_frames": 0,
    }
    broken_summary = result[str(broken)]["summary"]
    assert broken_summary["sync_errors"] == 1
    assert broken_summary["channels"]["1"] == {
        "frames": 9,
        "first_counter": 41,
        "last_counter": 50,
        "gaps": 1,
        "missing_frames": 1,
    }
    # Across files of a channel (a.raw ends at 40, c.raw starts at 41): continuous.
    assert result["combined"]["channels"]["1"]["gaps"] == 1
    assert result["combined"]["channels"]["1"]["frames"] == 41 + 9
    assert result["combined"]["spacecraft_ids"] == [0x11]
    # The reader hands the headers over as a table (one Dask array per file): nothing lost on the way.
    assert all(result[str(path)]["table_round_trip"] for path in (whole, wrapped, broken))


def test_gateway_cluster_is_the_newest_running_one_with_the_label(eopf_executable: Path) -> None:
    script = """
import json
from types import SimpleNamespace as N
from rs_eopf_hooks.gateway import newest_cluster_with_label
running, stopped = N(name="RUNNING"), N(name="STOPPED")
reports = [
    N(name="old", options={"cluster_name": "dask-l0"}, status=running, start_time=1),
    N(name="new", options={"cluster_name": "dask-l0"}, status=running, start_time=3),
    N(name="newest-but-stopped", options={"cluster_name": "dask-l0"}, status=stopped, start_time=5),
    N(name="other", options={"cluster_name": "dask-l1"}, status=running, start_time=9),
]
print(json.dumps([newest_cluster_with_label(reports, "dask-l0"), newest_cluster_with_label(reports, "nope")]))
"""
    assert run_in_eopf_venv(eopf_executable, script) == ["new", None]


def test_eopf_serves_the_demo_task_table(eopf_executable: Path, tmp_path: Path) -> None:
    """`eopf trigger tasktable` (what the RS DPR service asks a processor) gives the registry's demo.json."""
    out = tmp_path / "tasktable.json"
    done = subprocess.run(
        [eopf_executable, "trigger", "tasktable", "rs_demo_processor.units", "DemoL0Unit", "--output-file", out],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads(out.read_text()) == json.loads((TASKTABLES_DIR / "demo.json").read_text())


JOIN_TRACE = """
import json
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
trace.set_tracer_provider(TracerProvider())
from rs_eopf_hooks.tracing import JOINED_TRACE_ID, current_trace_id
with trace.get_tracer("eopf").start_as_current_span("eopf.triggering.workflow") as span:
    parent = format(span.parent.span_id, "016x")
    print(json.dumps({"joined": JOINED_TRACE_ID, "current": current_trace_id(), "parent": parent}))
"""


def test_tracing_hook_makes_eopf_spans_children_of_the_traceparent(eopf_executable: Path) -> None:
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    python = eopf_executable.with_name("python")
    done = subprocess.run(
        [python, "-c", JOIN_TRACE],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env={"PATH": "/usr/bin:/bin", "TRACEPARENT": f"00-{trace_id}-{span_id}-01"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"joined": trace_id, "current": trace_id, "parent": span_id}


SIZES = """
import json, sys
import fsspec
from rs_demo_processor.cadu_reader import file_size
options, folder, names = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3:]
fs = fsspec.filesystem("s3", **options)
calls = []
call_s3 = fs._call_s3

async def counted(method, *args, **kwargs):
    calls.append(method)
    return await call_s3(method, *args, **kwargs)

fs._call_s3 = counted
sizes = {name: file_size(fs, f"{folder}/{name}") for name in names}
print(json.dumps({"sizes": sizes, "calls": calls}))
"""


def test_chunk_sizes_come_from_one_listing_of_their_folder(
    eopf_executable: Path, settings: Settings, s3: Any, tmp_path: Path
) -> None:
    """The `cadu` reader opens a session's chunk files one by one: one listing answers every file's size."""
    bucket, folder = settings.s3.rs_bucket, f"tests/{uuid.uuid4()}/session"
    sizes = {f"DCS_01_chunk_{n}.raw": 1000 * n + 7 for n in range(1, 6)}
    for name, size in sizes.items():
        s3.put_object(Bucket=bucket, Key=f"{folder}/{name}", Body=b"\0" * size)
    options = {
        "key": settings.s3.aws_access_key_id.get_secret_value(),  # type: ignore[union-attr]
        "secret": settings.s3.aws_secret_access_key.get_secret_value(),  # type: ignore[union-attr]
        "client_kwargs": {"endpoint_url": settings.s3.s3_endpoint_url, "region_name": "us-east-1"},
    }
    result = run_in_eopf_venv(eopf_executable, SIZES, json.dumps(options), f"{bucket}/{folder}", *sizes)
    assert result["sizes"] == sizes
    assert result["calls"] == ["list_objects_v2"]
