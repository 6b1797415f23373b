"""Watching requests: `status`'s readable summary, the latest failed attempt while a step is retried (children
included), the operator's commands while it waits, and `--wait`'s view at 80 columns."""

from __future__ import annotations

import asyncio
import io
import json
import shlex
import uuid

import pytest
from rich.console import Console
from temporalio.client import Client, WorkflowFailureError

from rs_ondemand.models.progress import Progress, State
from rs_ondemand.models.staging import CadipStagingInput, CadipStagingResult
from rs_ondemand.names import CADIP_STAGING
from rs_ondemand.starter.watch import RequestView, change_line, live_view, read_request
from tests.support.stack import Simulator, run_cli

ID = "auxip-staging/alice/s1-aux/*/AUX_RESORB/2024-11-14T14:30:00.000Z/2024-11-14T14:35:00.000Z"


def rendered(view: RequestView, width: int = 80) -> list[str]:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(live_view(view, 3725.0, width))
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "progress",
    [
        Progress(
            state=State.STAGING,
            step="stream",
            items_done=1234,
            items_total=10000,
            assets_done=40000,
            assets_total=123456,
            bytes_done=131_100_000_000,
            bytes_total=262_200_000_000,
        ),
        Progress(state=State.PROCESSING, step="run processor", units_done=1, units_total=3, items_total=1),
    ],
)
def test_the_live_view_fits_80_columns_uncut(progress: Progress) -> None:
    lines = rendered(RequestView(ID, "RUNNING", progress))
    assert all(len(line) <= 80 for line in lines)
    assert not any("…" in line for line in lines)  # nothing cut
    text = "\n".join(lines)
    assert f"RUNNING: {progress.state.value}, step {progress.step}  01:02:05" in text
    assert f"items {progress.items_done}/{progress.items_total}" in text


def test_nothing_to_transfer_shows_no_byte_bar() -> None:
    """It showed `0/? bytes`."""
    text = "\n".join(rendered(RequestView(ID, "RUNNING", Progress(state=State.SEARCHING, step="search"))))
    assert "?" not in text and "bytes" not in text and "━" not in text


def test_bytes_show_in_decimal_units() -> None:
    progress = Progress(state=State.STAGING, bytes_done=131_100, bytes_total=262_200)
    assert "131.1 kB of 262.2 kB" in RequestView(ID, "RUNNING", progress).counts()


def test_waiting_for_an_operator_shows_the_error_and_the_exact_commands() -> None:
    progress = Progress(state=State.WAITING_FOR_OPERATOR, step="search", last_error="station answered 503")
    view = RequestView(ID, "RUNNING", progress)
    lines = view.lines()
    assert lines[0] == ID
    assert "  last error: station answered 503" in lines
    assert f"  waiting for an operator: rs-ondemand retry {shlex.quote(ID)}" in lines
    assert any(line.strip() == f"or rs-ondemand cancel {shlex.quote(ID)}" for line in lines)
    # The retry command stays whole (wrapped, never cut) at 80 columns.
    lines = rendered(view)
    assert all(len(line) <= 80 for line in lines)
    assert f"rs-ondemand retry {shlex.quote(ID)}" in "".join(lines)
    assert "retry" in change_line(view, 1.0) and "\n" not in change_line(view, 1.0)


def test_every_waiting_step_comes_with_its_own_retry_command_and_warnings_show() -> None:
    steps = ["stream S1A_1/DCS_01_ch1_DSDB_00001.raw", "stream S1A_1/it's ch2"]
    progress = Progress(
        state=State.WAITING_FOR_OPERATOR, last_error="broke off", waiting_steps=steps, warnings=["retry signal ignored"]
    )
    lines = RequestView(ID, "RUNNING", progress, warnings=progress.warnings).lines()
    for step in steps:
        command = f"rs-ondemand retry {shlex.quote(ID)} --step {shlex.quote(step)}"
        assert f"    one step only: {command}" in lines
        assert shlex.split(command)[-1] == step  # pasted in a shell, the step arrives as `retry --step` expects
    assert "  warning: retry signal ignored" in lines
    assert not any("--step" in line for line in RequestView(ID, "RUNNING", Progress(state=State.STAGING)).lines())


async def test_status_shows_the_latest_attempt_of_a_child_then_what_the_operator_can_do(
    client: Client, task_queue: str, simulator: Simulator, collection: str
) -> None:
    """Every download broken off: the Staging child's transfers are retried (the request's `last_error` is still
    empty, the failed attempt is shown), then the request waits for an operator (error and commands shown)."""
    session = f"S1A_{uuid.uuid4().int % 10**20:020d}"
    simulator.add_session(session_id=session, satellite="S1A", channels=1, chunks_per_channel=2, chunk_size=1024)
    simulator.faults(cadip={"reset_rate": 1.0})
    request = CadipStagingInput.for_session("carol", session, collection, options={"step_attempts": 4})
    handle = await client.start_workflow(
        CADIP_STAGING, request, id=f"test-watch-{uuid.uuid4()}", task_queue=task_queue, result_type=CadipStagingResult
    )
    try:
        async with asyncio.timeout(90):
            while not (retrying := await read_request(client, handle.id)).attempt_error:  # noqa: ASYNC110 (polling the server)
                await asyncio.sleep(0.2)
        assert retrying.status == "RUNNING"
        if not retrying.waiting_for_operator:
            assert retrying.progress is not None and retrying.progress.last_error is None
        assert retrying.attempt_error.startswith("transfer_batch (attempt ") and "broke off" in retrying.attempt_error
        assert f"retrying after: {retrying.attempt_error}" in "\n".join(retrying.lines())

        async with asyncio.timeout(90):
            while not (await read_request(client, handle.id)).waiting_for_operator:  # noqa: ASYNC110 (polling the server)
                await asyncio.sleep(0.3)
        code, out, err = await run_cli("status", handle.id)
        assert code == 0, err
        assert out.startswith(f"{handle.id}\n  RUNNING: waiting_for_operator")
        assert "  last error: " in out and f"rs-ondemand retry {shlex.quote(handle.id)}" in out
        code, out, _ = await run_cli("status", handle.id, "--json")
        assert json.loads(out)["progress"]["state"] == "waiting_for_operator"
    finally:
        simulator.clear_faults()
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), timeout=60)
