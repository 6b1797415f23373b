"""`rs-ondemand bench chaos`: one soak, from a stack of its own to the report.

1. An embedded stack of the soak's own is brought up (free ports, a temporary state dir; taken down and purged
   at the end, or by its watchdog if the soak is killed): its servers are killed, frozen and restarted, which
   must never happen to the stack a developer works with (moto loses every object on a restart).
2. Two worker processes, `rs-ondemand worker --role staging` and `--role processing`, poll a queue of the
   soak's own: those are the processes the faults kill.
3. The plan (`plan.py`, from the seed) runs: the workload starts its requests on time, the faults strike on
   time, and the operator retries whatever waits for one.
4. After the last fault cleared (every server and worker back, stations behaving), every request settles; then
   the invariants are checked and the report is made: faults by kind, requests by outcome, each invariant with
   its violations, and for a violation what reproduces it (seed, fault schedule, workflow ids).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from rs_ondemand.activities.catalog_client import CatalogClient
from rs_ondemand.activities.storage import ObjectStore
from rs_ondemand.bench import BenchError
from rs_ondemand.bench._common import Log, machine_now
from rs_ondemand.bench.chaos.faults import FaultRunner, WorkerPool
from rs_ondemand.bench.chaos.invariants import SERVER_LOGS, Checker, lost_in_s3
from rs_ondemand.bench.chaos.plan import SoakConfig, SoakPlan, plan_soak
from rs_ondemand.bench.chaos.requests import Request
from rs_ondemand.bench.chaos.services import ServiceControl
from rs_ondemand.bench.chaos.workload import Workload
from rs_ondemand.client import connect
from rs_ondemand.config import Settings
from rs_ondemand.stack import Stack
from rs_ondemand.stack.watchdog import guarded

SETTLE_BASE_S = 300.0
"""How long requests get to end after the last fault cleared, plus a share of the soak's length."""
SETTLE_SHARE = 0.5
WorkerCommand = Callable[[str], Sequence[str]]


def default_worker_command(role: str) -> list[str]:
    """`rs-ondemand worker --role <role>` of this environment."""
    return [str(Path(sys.executable).with_name("rs-ondemand")), "worker", "--role", role]


@contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    """`variables` set in this process's environment for the block (the settings read it before any file)."""
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _requests_summary(requests: list[Request]) -> dict[str, Any]:
    by_outcome: dict[str, int] = {}
    by_workflow: dict[str, dict[str, int]] = {}
    for request in requests:
        outcome = "stuck" if request.stuck else str(request.outcome)
        if request.cancelled_by_operator:
            outcome = "cancelled by the operator"
        by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
        kind = by_workflow.setdefault(request.workflow, {})
        kind[outcome] = kind.get(outcome, 0) + 1
    return {
        "total": len(requests),
        "by_outcome": by_outcome,
        "by_workflow": by_workflow,
        "cancel_planned": sum(r.cancel_after_s is not None for r in requests),
        "duplicated": sum(r.role == "duplicate" for r in requests),
        "operator_retries": sum(len(r.retried_at_s) for r in requests),
        "requests_retried": sum(bool(r.retried_at_s) for r in requests),
    }


class Soak:
    def __init__(self, plan: SoakPlan, state_dir: Path, log: Log, worker_command: WorkerCommand) -> None:
        self.plan, self.state_dir, self.log, self.worker_command = plan, state_dir, log, worker_command
        self.queue = f"chaos-{uuid.uuid4().hex[:8]}"
        self._t0 = time.monotonic()

    def now(self) -> float:
        return round(time.monotonic() - self._t0, 1)

    async def run(self, launcher: Stack) -> dict[str, Any]:
        self.log(f"chaos: bringing a stack of its own up in {launcher.state_dir}")
        info = await asyncio.to_thread(launcher.up)
        env = {**info.env, "RS_STACK_DIR": str(info.state_dir)}
        with environment(env):  # the soak's settings only: none of a stack the caller's environment points at
            settings = Settings.load(info.env_file)
            if any(job.kind in ("dpr", "dpr_chain") for job in self.plan.jobs) and not os.access(
                settings.processor.executable, os.X_OK
            ):
                raise BenchError(f"no EOPF environment at {settings.processor.executable}: run scripts/setup-eopf")
            workers = WorkerPool(
                self.worker_command, {**os.environ, "RS_TASK_QUEUE": self.queue}, launcher.state_dir / "logs"
            )
            return await self._run(launcher, ServiceControl(launcher, info), settings, workers)

    async def _run(
        self, launcher: Stack, services: ServiceControl, settings: Settings, workers: WorkerPool
    ) -> dict[str, Any]:
        config = self.plan.config
        client = await connect(settings.temporal)
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as http,
            ObjectStore.open(settings.s3) as store,
        ):
            catalog = CatalogClient(settings.catalog, http)
            simulator = services.info.env["SIMULATOR_URL"]
            workload = Workload(self.plan, client, http, simulator, self.queue, self.now, self.log)
            faults = FaultRunner(
                self.plan, services, workers, http, simulator, catalog, workload.id_prefix, self.now, self.log
            )
            try:
                for role in ("staging", "processing"):
                    await workers.start(role)
                await workload.prepare()
                report = await self._soak(workload, faults)
                logs = [workers.log_path(role) for role in ("staging", "processing")]
                logs += [launcher.state_dir / "logs" / f"{name}.log" for name in SERVER_LOGS]
                checker = Checker(
                    settings, client, store, catalog, workload.requests, faults.s3_losses, workload.id_prefix, logs
                )
                self.log("chaos: checking the invariants")
                verdicts = await checker.check()
            finally:
                await workload.close()
                await workers.stop()
        violations = sum(len(v.violations) for v in verdicts.values())
        report["invariants"] = {name: verdict.as_json() for name, verdict in verdicts.items()}
        report["violations"] = violations
        if violations:
            ids = [str(d["workflow_id"]) for v in verdicts.values() for d in v.violations if "workflow_id" in d]
            ids += [w for v in verdicts.values() for d in v.violations for w in d.get("workflow_ids", [])]
            report["reproduce"] = {
                "command": f"rs-ondemand bench chaos --minutes {config.minutes:g} --seed {config.seed}",
                "seed": config.seed,
                "fault_schedule": [record.as_json() for record in faults.struck],
                "plan": self.plan.as_json(),
                "workflow_ids": sorted(set(ids)),
            }
        report["requests_detail"] = [r.as_json() for r in workload.requests if r.outcome != "completed" or r.stuck]
        return report

    async def _soak(self, workload: Workload, faults: FaultRunner) -> dict[str, Any]:
        config = self.plan.config
        machine = machine_now()
        self.log(
            f"chaos: seed {config.seed}, {config.minutes:g} min, {len(self.plan.jobs)} jobs, "
            f"{len(self.plan.faults)} faults (load {machine.get('load_avg')})"
        )
        self._t0 = time.monotonic()
        operator = asyncio.ensure_future(workload.operate())
        try:
            await asyncio.gather(workload.run(config.seconds * 0.8), faults.run())
            soak_s = self.now()
            self.log(f"chaos: the last fault cleared at {soak_s:.0f} s; clearing everything, then settling")
            await faults.clear_all()
            stuck = await workload.settle(
                SETTLE_BASE_S + SETTLE_SHARE * config.seconds,
                lambda request: lost_in_s3(request, workload.requests, faults.s3_losses),
            )
        finally:
            operator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await operator
        settle_s = round(self.now() - soak_s, 1)
        self.log(f"chaos: settled in {settle_s:.0f} s ({len(stuck)} stuck)")
        return {
            "seed": config.seed,
            "minutes": config.minutes,
            "soak_s": soak_s,
            "settle_s": settle_s,
            "faults": {
                "planned": len(self.plan.faults),
                "injected": sum(r.outcome == "injected" for r in faults.struck),
                "by_kind": faults.by_kind(),
                "s3_restarts": len(faults.s3_losses),
            },
            "requests": _requests_summary(workload.requests) | {"schedule_triggers": workload.triggers},
            "machine": machine,
            "load_avg_after": machine_now().get("load_avg"),
        }


async def run_chaos(
    config: SoakConfig,
    *,
    state_dir: Path | None = None,
    log: Log = lambda message: None,
    worker_command: WorkerCommand = default_worker_command,
) -> dict[str, Any]:
    """Run one soak on a stack of its own (in `state_dir`, default a temporary folder, purged at the end)."""
    plan = plan_soak(config)
    with contextlib.ExitStack() as stack:
        root = state_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rs-chaos-")))
        launcher = Stack(root / "stack", with_worker=False, with_simulator=True, prefer_default_ports=False, notify=log)
        stack.enter_context(guarded(launcher, purge=True))
        return await Soak(plan, root, log, worker_command).run(launcher)


def bench_chaos(*, minutes: float, seed: int, log: Log = lambda message: None) -> dict[str, Any]:
    return asyncio.run(run_chaos(SoakConfig(minutes=minutes, seed=seed), log=log))
