"""`rs-ondemand bench chaos`: the plan drawn from the seed, and a scaled-down soak (under a minute of faults, a
fixed seed) on a stack of its own, whose workers leave their search manifests behind (a deliberately broken
cleanup): the soak must report exactly that, and no other violation."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rs_ondemand.bench.chaos.invariants import INVARIANTS, OAUTH2_TOKEN
from rs_ondemand.bench.chaos.plan import FAULT_KINDS, JOB_KINDS, SoakConfig, plan_soak
from rs_ondemand.bench.chaos.soak import run_chaos

LEAKY_WORKER = Path(__file__).with_name("_leaky_worker.py")


def test_the_token_check_finds_tokens_not_the_code_that_sends_them() -> None:
    """A traceback quotes the line that builds the header: that is no leak; a written-out token is."""
    assert not OAUTH2_TOKEN.search('headers["Authorization"] = f"Bearer {await self.token(renew=renew)}"')
    assert OAUTH2_TOKEN.search("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig")
    assert OAUTH2_TOKEN.search('{"access_token": "x1", "token_type": "Bearer"}')


def test_the_plan_follows_the_seed() -> None:
    """Same seed, same plan (a violation is replayed with `--seed`); every fault and job kind at least once;
    server faults and jobs inside the soak."""
    config = SoakConfig(minutes=2, seed=11)
    plan = plan_soak(config)
    assert plan == plan_soak(SoakConfig(minutes=2, seed=11))
    assert plan.as_json() != plan_soak(SoakConfig(minutes=2, seed=12)).as_json()
    assert {fault.kind for fault in plan.faults} == set(FAULT_KINDS)
    assert {job.kind for job in plan.jobs} == set(JOB_KINDS)
    assert len(plan.faults) == 24 and len(plan.jobs) == 14
    assert all(config.warmup_s <= fault.at_s <= config.seconds for fault in plan.faults)
    assert all(0 <= job.at_s <= config.seconds * 0.8 for job in plan.jobs)
    with pytest.raises(ValueError, match="unknown fault kinds"):
        SoakConfig(fault_kinds=("worker_staging", "meteor"))  # type: ignore[arg-type]


LEAN_FAULTS = tuple(kind for kind in FAULT_KINDS if kind not in ("temporal", "s3_restart", "eopf_kill"))
"""The test's faults: every kind but those that cost minutes to recover from on a loaded machine (a Temporal
restart, an S3 restart that loses every object, an EOPF run to wait for): the 10-minute soak has them."""


async def test_a_scaled_down_soak_reports_a_broken_cleanup(tmp_path: Path) -> None:
    """Under eleven faults in half a minute, every invariant holds but the one the broken cleanup violates: the
    search manifests the stagings leave in the work bucket, each with the request that left it."""
    config = SoakConfig(
        minutes=0.5, seed=3, fault_kinds=LEAN_FAULTS, job_kinds=("cadip_small", "prip", "auxip"), warmup_s=3
    )
    result = await run_chaos(
        config,
        state_dir=tmp_path,
        worker_command=lambda role: [sys.executable, str(LEAKY_WORKER), role],
        log=print,
    )
    assert result["faults"]["by_kind"] == {kind: {"injected": 1} for kind in LEAN_FAULTS}
    assert result["requests"]["total"] >= 4
    assert set(result["invariants"]) == set(INVARIANTS)
    leaks = ("catalog_matches_storage", "cancelled_left_nothing_unpublished")
    others = {name: v["details"] for name, v in result["invariants"].items() if name not in leaks}
    assert all(not details for details in others.values()), others
    found = [d for name in leaks for d in result["invariants"][name]["details"]]
    assert 0 < len(found) == result["violations"]
    assert all(d["problem"] == "left in the work bucket" for d in found), found
    assert all(d["key"].startswith("rs-ondemand-work/requests/chaos/s3/") for d in found), found
    assert all(
        len(d["workflow_ids"]) == 1 and d["key"].split("/")[2:5] == d["workflow_ids"][0].split("/") for d in found
    )
    reproduce = result["reproduce"]
    assert reproduce["command"] == "rs-ondemand bench chaos --minutes 0.5 --seed 3"
    assert len(reproduce["fault_schedule"]) == len(plan_soak(config).faults)
    assert set(reproduce["workflow_ids"]) == {d["workflow_ids"][0] for d in found}
