"""`rs-ondemand schedule create|list|delete|backfill`: durations, backfill plans, one-line refusals (exit 2), and
the commands against the real stack (an AUXIP schedule backfilled over the seeded orbit files)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rs_ondemand.activities._stac import open_stac_api
from rs_ondemand.config import Settings
from rs_ondemand.models.schedules import ScheduledStagingInput, plan_backfill, published_filter, run_times
from rs_ondemand.starter._boundary import Refused
from rs_ondemand.starter.schedules import format_duration, parse_duration
from tests.support.catalog import stac_ids
from tests.support.stack import run_cli

H = timedelta(hours=1)


def aux_request(every_s: int = 3600, overlap_s: int = 600, **changes: Any) -> ScheduledStagingInput:
    return ScheduledStagingInput.model_validate(
        {
            "station": "auxip",
            "env": {"owner_id": "alice"},
            "product_type": "AUX_RESORB",
            "catalog_collection_identifier": "s1-aux",
            "window_seconds": every_s,
            "overlap_seconds": overlap_s,
        }
        | changes
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("10m", 600), ("1h30m", 5400), ("2d", 172800), (" 2M ", 120)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration("--every", text) == seconds
    assert parse_duration("--every", format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "10x", "1.5m", "-1m", "m", "10m1h"])
def test_a_bad_duration_refuses_the_command(text: str) -> None:
    with pytest.raises(Refused, match=r"^--every: "):
        parse_duration("--every", text)


def test_the_station_collections_must_match_the_station() -> None:
    assert aux_request().station_collections() is None
    assert aux_request(auxip_collection="adgs").station_collections() == ["adgs"]
    with pytest.raises(ValueError, match="prip_collection is required"):
        aux_request(station="prip")
    with pytest.raises(ValueError, match="prip_collection is for station prip"):
        aux_request(prip_collection="prip")


def test_a_backfill_on_the_grid_covers_the_window_and_the_overlap_before_it() -> None:
    start = datetime(2025, 1, 1, 6, tzinfo=UTC)
    plan = plan_backfill(start, start + 4 * H, H, timedelta(0), aux_request())
    assert (plan.first_run, plan.last_run, plan.runs) == (start + H, start + 4 * H, 4)
    assert run_times(plan) == [start + k * H for k in range(1, 5)]
    assert (plan.covers_start, plan.covers_end) == (start - timedelta(minutes=10), start + 4 * H)
    # Temporal gets bounds strictly between scheduled times, whatever its range semantics.
    assert (plan.start_at, plan.end_at) == (start + H / 2, start + 4 * H + H / 2)


def test_a_backfill_off_the_grid_takes_the_runs_whose_windows_reach_it() -> None:
    start, end = datetime(2025, 1, 1, 6, 20, tzinfo=UTC), datetime(2025, 1, 1, 9, 30, tzinfo=UTC)
    plan = plan_backfill(start, end, H, timedelta(0), aux_request())
    assert [t.hour for t in run_times(plan)] == [7, 8, 9, 10]
    assert plan.covers_start == datetime(2025, 1, 1, 5, 50, tzinfo=UTC) <= start and plan.covers_end >= end
    with_offset = plan_backfill(start, end, H, timedelta(minutes=15), aux_request())
    assert [(t.hour, t.minute) for t in run_times(with_offset)] == [(7, 15), (8, 15), (9, 15), (10, 15)]
    with pytest.raises(ValueError, match="must be after"):
        plan_backfill(end, start, H, timedelta(0), aux_request())


def no_stack(tmp_path: Path) -> dict[str, str]:
    return {"TEMPORAL_ADDRESS": "127.0.0.1:1", "RS_STACK_DIR": str(tmp_path / "no-stack")}


CREATE = ["schedule", "create", "--id", "s", "--product-type", "AUX_RESORB", "--catalog-collection", "c"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*CREATE, "--station", "cadip"], "error: --station must be prip or auxip, not 'cadip'"),
        ([*CREATE, "--station", "prip", "--every", "10x"], "error: --every: '10x' is not a duration"),
        ([*CREATE, "--station", "prip", "--every", "0s"], "error: --every: '0s' is shorter than 1s"),
        ([*CREATE, "--station", "prip", "--overlap", "soon"], "error: --overlap: 'soon' is not a duration"),
        ([*CREATE, "--station", "auxip", "--id", "a/b"], "error: --id: 'a/b' is not a safe identifier"),
        ([*CREATE, "--station", "auxip", "--product-type", "AUX RESORB"], "error: invalid request: product_type"),
        ([*CREATE, "--station", "auxip", "--prip-collection", "p"], "prip_collection is for station prip"),
        (
            ["schedule", "backfill", "s", "--start", "2025-01-02", "--end", "2025-01-01"],
            "error: --end 2025-01-01T00:00:00Z must be after --start 2025-01-02T00:00:00Z",
        ),
        (["schedule", "backfill", "s", "--start", "yesterday", "--end", "2025-01-01"], "error: --start: 'yesterday'"),
    ],
)
async def test_bad_input_is_refused_in_one_line_before_anything_is_reached(
    args: list[str], message: str, tmp_path: Path
) -> None:
    code, out, err = await run_cli(*args, **no_stack(tmp_path))
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()  # one line, no traceback, no attempt to reach the (absent) stack
    assert line.startswith("error: ") and message in line


async def listed(schedule_id: str) -> dict[str, Any] | None:
    code, out, err = await run_cli("schedule", "list", "--json")
    assert code == 0, err
    return next((s for s in json.loads(out) if s["id"] == schedule_id), None)


async def eventually_listed(schedule_id: str, present: bool) -> dict[str, Any] | None:
    for _ in range(60):  # schedule listing is eventually consistent
        found = await listed(schedule_id)
        if (found is not None) == present:
            return found
        await asyncio.sleep(0.5)
    raise AssertionError(f"schedule {schedule_id} {'never' if present else 'still'} listed")


def station_ids(settings: Settings, start: datetime, end: datetime) -> set[str]:
    assert settings.auxip.url
    with open_stac_api(settings.auxip.url, 60) as station:
        search = station.search(filter=published_filter(start, end, "AUX_RESORB"), limit=100)
        return {item["id"] for item in search.items_as_dicts()}


async def test_create_list_backfill_delete_on_the_stack(task_queue: str, settings: Settings, collection: str) -> None:
    """An AUXIP schedule, created paused: a backfill over November 2024 stages exactly the seeded orbit files
    published in the span its runs cover; a second `create` of the same id, a too large backfill and unknown ids
    are refused in one line (exit 2)."""
    schedule_id = f"test-{uuid.uuid4().hex[:10]}"
    create = ["schedule", "create", "--id", schedule_id, "--station", "auxip", "--product-type", "AUX_RESORB"]
    create += ["--catalog-collection", collection, "--every", "10d", "--overlap", "1h", "--owner", "bob"]
    create += ["--paused", "--task-queue", task_queue]
    code, out, err = await run_cli(*create)
    assert code == 0, err
    assert f"schedule id: {schedule_id}" in err and "paused" in err
    try:
        code, out, err = await run_cli(*create)
        assert code == 2 and err.strip() == (
            f"error: schedule '{schedule_id}' already exists "
            f"(delete it first: rs-ondemand schedule delete {schedule_id})"
        )

        shown = await eventually_listed(schedule_id, present=True)
        assert shown is not None
        assert shown | {"recent": [], "next_runs": []} == {
            "id": schedule_id,
            "station": "auxip",
            "product_type": "AUX_RESORB",
            "catalog_collection": collection,
            "station_collection": None,
            "owner": "bob",
            "every": "10d",
            "window_seconds": 864000,
            "overlap_seconds": 3600,
            "task_queue": task_queue,
            "paused": True,
            "note": "",
            "runs": 0,
            "running": [],
            "recent": [],
            "next_runs": [],
        }

        window = ["--start", "2024-11-01", "--end", "2024-12-01"]
        code, out, err = await run_cli("schedule", "backfill", schedule_id, *window, "--max-runs", "3")
        assert code == 2 and "takes 4 runs (one every 10d), more than --max-runs 3" in err

        code, out, err = await run_cli("schedule", "backfill", schedule_id, *window, "--wait")
        assert code == 0, err
        report = json.loads(out)
        plan = report["plan"]
        assert plan["runs"] == 4 and f"backfill {schedule_id}: 4 run(s) scheduled" in err
        covers = datetime.fromisoformat(plan["covers_start"]), datetime.fromisoformat(plan["covers_end"])
        assert covers[0] <= datetime(2024, 11, 1, tzinfo=UTC) and covers[1] >= datetime(2024, 12, 1, tzinfo=UTC)
        expected = await asyncio.to_thread(station_ids, settings, *covers)
        assert expected, "the seeded AUXIP files should include AUX_RESORB published in November 2024"
        assert [run["status"] for run in report["runs"]] == ["COMPLETED"] * 4
        assert sum(run["items_staged"] for run in report["runs"]) == len(expected)
        assert await stac_ids(settings, collection) == expected
    finally:
        code, _, err = await run_cli("schedule", "delete", schedule_id)
        assert code == 0, err
    await eventually_listed(schedule_id, present=False)
    for command in (["delete", schedule_id], ["backfill", schedule_id, "--start", "2024-11-01", "--end", "2024-11-02"]):
        code, out, err = await run_cli("schedule", *command)
        assert code == 2 and out == "" and err.strip() == f"error: no schedule '{schedule_id}'"
