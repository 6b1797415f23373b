"""`rs-ondemand stations list|check`, and station collections refused before anything starts, on the stack's own
station registry (the stations file `stack up` writes beside `.stack/env`)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

from rs_ondemand.stack.envfile import is_secret
from tests.support.stack import run_cli


def secrets_of(stack_env: dict[str, str]) -> list[str]:
    return [value for key, value in stack_env.items() if is_secret(key) and value]


async def test_list_shows_the_stacks_stations_without_secrets(stack_env: dict[str, str]) -> None:
    code, out, err = await run_cli("stations", "list", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert listed["source"] == f"stations file {stack_env['RS_STATIONS_FILE']}"
    stations = {s["name"]: s for s in listed["stations"]}
    assert {"cadip", "auxip", "prip", "ins", "mti"} <= set(stations)
    assert (stations["ins"]["kind"], stations["ins"]["api"], stations["ins"]["auth"]) == ("cadip", "odata", "oauth2")
    assert "s1_ins" in stations["ins"]["collections"] and stations["mti"]["redirect_hosts"] == ["localhost"]
    code, text, _ = await run_cli("stations", "list")
    assert code == 0 and "s1_ins -> ins" in text
    assert not [s for s in secrets_of(stack_env) if s in out + text]


async def test_check_logs_in_to_every_station(stack_env: dict[str, str]) -> None:
    code, out, err = await run_cli("stations", "check", "--json")
    assert code == 0, out + err
    reports = json.loads(out)["stations"]
    assert reports and all(r["reachable"] and r["auth_ok"] and r["latency_ms"] >= 0 for r in reports), reports


async def test_the_environment_overrides_the_stack_env_and_a_refused_login_is_reported(
    stack_env: dict[str, str],
) -> None:
    """`CADIP_PASSWORD` set in the environment wins over `.stack/env` (the stations file refers to it)."""
    code, out, err = await run_cli("stations", "check", "--json", CADIP_PASSWORD="not-the-password")
    assert code == 1
    reports = {r["name"]: r for r in json.loads(out)["stations"]}
    assert [n for n, r in reports.items() if not r["auth_ok"]] == ["cadip", "ins", "mti"]
    assert reports["ins"]["reachable"] and "refused our credentials" in reports["ins"]["error"]
    assert reports["prip"]["auth_ok"]
    assert not [s for s in secrets_of(stack_env) if s in out + err]


async def test_a_bad_stations_file_is_one_line(tmp_path: Path, stack_env: dict[str, str]) -> None:
    bad = tmp_path / "stations.yaml"
    bad.write_text(
        "stations:\n  ins:\n    kind: cadip\n    api: odata\n    url: http://x\n    passwd: ${CADIP_PASSWORD}\n"
    )
    for command in (["stations", "list"], ["worker"]):
        code, out, err = await run_cli(*command, RS_STATIONS_FILE=str(bad))
        assert code == 1 and out == ""
        assert err.strip().count("\n") == 0 and f"stations file {bad}: stations.ins.passwd" in err, err
        assert stack_env["CADIP_PASSWORD"] not in err


SCHEDULE = ["schedule", "create", "--product-type", "AUX_RESORB", "--catalog-collection", "never-created"]


async def test_a_schedule_naming_an_unknown_station_collection_is_refused(
    tmp_path: Path, stack_env: dict[str, str]
) -> None:
    """Issue 14 defect 4: `schedule create --auxip-collection nope` was accepted, every run then found nothing.
    Refused by the registry; without one (the shorthand variables), by the station's STAC facade."""
    args = [*SCHEDULE, "--id", "never-created", "--station", "auxip", "--auxip-collection", "nope"]
    code, out, err = await run_cli(*args)
    assert code == 2 and "unknown AUXIP collection 'nope' in stations file" in err, (out, err)

    # The stack's env without its stations file: the AUXIP_* shorthand, whose facade answers 404.
    without = {k: v for k, v in stack_env.items() if k != "RS_STATIONS_FILE"}
    (tmp_path / "env").write_text("".join(f"{k}={v}\n" for k, v in without.items()))
    env = {k: v for k, v in os.environ.items() if k != "RS_STATIONS_FILE"} | {"RS_STACK_DIR": str(tmp_path)}
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("rs-ondemand")), *args, env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 2
    assert "unknown AUXIP collection 'nope': station auxip has no collection 'nope'" in stderr.decode()
    code, out, err = await run_cli("schedule", "list", "--json")
    assert "never-created" not in out


async def test_a_worker_of_its_own_stages_from_an_odata_station_of_its_own_stations_file(
    tmp_path: Path, stack_env: dict[str, str], collection: str
) -> None:
    """A stations file and the README's two commands: `RS_STATIONS_FILE=… RS_TASK_QUEUE=… rs-ondemand worker`
    beside the stack, then `stage cadip --cadip-collection <its collection>`; the environment wins over
    `.stack/env` (which names the stack's own stations file and queue)."""
    root = stack_env["SIMULATOR_URL"]
    login = "\n".join(
        f"    {key}: ${{CADIP_{key.upper()}}}" for key in ("client_id", "client_secret", "username", "password")
    )
    stations = tmp_path / "stations.yaml"
    stations.write_text(
        f"stations:\n  my-ins:\n    kind: cadip\n    api: odata\n    url: {root}/ins\n"
        f"    token_url: {root}/ins/oauth2/token\n{login}\ncollections:\n  mine: {{station: my-ins}}\n"
    )
    env = {"RS_STATIONS_FILE": str(stations), "RS_TASK_QUEUE": f"tq-own-{uuid.uuid4().hex[:8]}"}
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("rs-ondemand")),
            "worker",
            env={**os.environ, **env},
            stdout=out,
            stderr=out,
        )
    try:
        for _ in range(600):
            if "Worker started" in log.read_text() or worker.returncode is not None:
                break
            await asyncio.sleep(0.1)
        assert "Worker started" in log.read_text(), log.read_text()
        code, out_text, err = await run_cli(
            "stage", "cadip", "--session", "S1A_20241114143038056552", "--cadip-collection", "mine",
            "--catalog-collection", collection, "--owner", "olga", "--wait", **env,
        )  # fmt: skip
        assert code == 0, out_text + err
        result = json.loads(out_text)
        assert result["staging"]["items_staged"] == 1 and result["staging"]["assets_staged"] == 38
    finally:
        worker.terminate()
        await worker.wait()
    assert not [s for s in secrets_of(stack_env) if s in log.read_text()]
