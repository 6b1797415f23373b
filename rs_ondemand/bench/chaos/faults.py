"""The soak's faults, struck on time: worker processes killed (SIGKILL) and restarted, the stack's servers killed,
frozen and restarted, stations misbehaving through the simulator's `/_faults`, their tokens revoked, EOPF runs
killed. Each fault is recorded as it really happened (when it began and cleared, what it hit), for the report.

The servers' faults go one at a time (`SERVICE_FAULTS`); stations' faults that overlap are combined (the
simulator's `/_faults` is one state: the strongest value of each key wins while they overlap)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from rs_ondemand.activities.catalog_client import CatalogClient
from rs_ondemand.bench.chaos.plan import SERVICE_FAULTS, STATION_FAULTS, Fault, SoakPlan
from rs_ondemand.bench.chaos.procs import eopf_drivers, kill_worker, start_worker
from rs_ondemand.bench.chaos.services import ServiceControl

EOPF_WAIT_S = 120.0
"""How long an `eopf_kill` waits for an EOPF run of the soak to hit; none by then: skipped."""
WORKER_PATIENCE_S = 300.0
"""How long a worker's restart is tried again (a server fault that overlaps it lasts seconds)."""


@dataclass(frozen=True)
class S3Loss:
    """An S3 restart (planned, or the launcher's while it brought another service back): from `down_s` until
    `back_s` its objects were lost; `items` were in the catalog when it was back (the restart may have taken
    their objects, or those of an item published while it came back)."""

    down_s: float
    back_s: float
    items: frozenset[tuple[str, str]]


@dataclass
class Struck:
    """A fault as it happened."""

    fault: Fault
    began_s: float | None = None
    cleared_s: float | None = None
    outcome: str = "pending"
    """`injected`, `skipped: <why>` or `error: <what>`."""
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self.fault) | {
            "began_s": self.began_s,
            "cleared_s": self.cleared_s,
            "outcome": self.outcome,
            "detail": self.detail,
        }


class WorkerPool:
    """The soak's worker processes, one per role, each in a session of its own."""

    def __init__(self, command: Callable[[str], Sequence[str]], env: dict[str, str], logs: Path) -> None:
        self.command = command
        self.env = env
        self.logs = logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def log_path(self, role: str) -> Path:
        return self.logs / f"worker-{role}.log"

    async def start(self, role: str, patience_s: float = WORKER_PATIENCE_S) -> None:
        """Start the role's worker, again while it cannot start (a worker exits when the Temporal server it
        connects to is down: a server fault may overlap a worker's restart)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + patience_s
        while True:
            try:
                self.processes[role] = await start_worker(self.command(role), self.env, self.log_path(role))
                return
            except RuntimeError:
                if loop.time() > give_up:
                    raise
                await asyncio.sleep(2.0)

    async def crash(self, role: str, down_s: float) -> int:
        """SIGKILL the role's worker, and start a new one `down_s` later; returns the killed pid."""
        async with self._locks.setdefault(role, asyncio.Lock()):
            process = self.processes[role]
            await asyncio.to_thread(kill_worker, process)
            await asyncio.sleep(down_s)
            await self.start(role)
            return process.pid

    async def ensure_running(self) -> None:
        for role, process in list(self.processes.items()):
            if process.poll() is not None:
                await self.start(role)

    async def stop(self) -> None:
        for process in self.processes.values():
            await asyncio.to_thread(kill_worker, process)


@dataclass
class FaultRunner:
    plan: SoakPlan
    services: ServiceControl
    workers: WorkerPool
    http: httpx.AsyncClient
    simulator_url: str
    catalog: CatalogClient
    run_prefix: str
    """EOPF runs of the soak's DPR requests start so (their workflow ids)."""
    now: Callable[[], float]
    log: Callable[[str], None]
    struck: list[Struck] = field(default_factory=list)
    s3_losses: list[S3Loss] = field(default_factory=list)
    _service_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _stations: list[Fault] = field(default_factory=list)

    async def run(self) -> None:
        """Strike every fault at its time; returns once the last one has cleared."""
        tasks = []
        for fault in self.plan.faults:
            await asyncio.sleep(max(0.0, fault.at_s - self.now()))
            record = Struck(fault)
            self.struck.append(record)
            tasks.append(asyncio.ensure_future(self._strike(record)))
        await asyncio.gather(*tasks)

    async def _strike(self, record: Struck) -> None:
        fault = record.fault
        try:
            if fault.kind in SERVICE_FAULTS:
                async with self._service_lock:
                    await self._service(record)
            elif fault.kind in ("worker_staging", "worker_processing"):
                record.began_s = self.now()
                pid = await self.workers.crash(fault.kind.removeprefix("worker_"), fault.duration_s)
                record.outcome, record.detail = "injected", f"pid {pid}"
            elif fault.kind in STATION_FAULTS:
                await self._station(record)
            elif fault.kind == "token_revocation":
                record.began_s = self.now()
                response = await self.http.delete(f"{self.simulator_url}/_tokens", params={"station": fault.station})
                response.raise_for_status()
                record.outcome, record.detail = "injected", f"{response.json()} tokens revoked"
            else:
                await self._kill_eopf(record)
        except Exception as err:  # the soak goes on; the report says which fault could not be struck
            record.outcome = f"error: {err!r}"[:500]
        record.cleared_s = self.now()
        where = f" {fault.station}" if fault.station else ""
        self.log(
            f"chaos: fault {fault.index} {fault.kind}{where} at {record.began_s} s: {record.outcome} {record.detail}"
        )

    async def _service(self, record: Struck) -> None:
        fault, services = record.fault, self.services
        record.began_s = self.now()
        s3_pid = services.info.services["s3"].pid
        try:
            await self._stop_and_restore(fault)
        finally:
            if services.info.services["s3"].pid != s3_pid:
                # Moto keeps its objects in memory: whatever restarted it (this fault, or `up` finding it not
                # answering while it brought another service back), what it held is gone.
                self.s3_losses.append(S3Loss(record.began_s, self.now(), frozenset(await self._catalog_items())))
                record.detail = "S3 restarted"
        record.outcome = "injected"

    async def _stop_and_restore(self, fault: Fault) -> None:
        services = self.services
        if fault.kind == "s3_freeze":
            await asyncio.to_thread(services.freeze, "s3")
            try:
                await asyncio.sleep(fault.duration_s)
            finally:
                await asyncio.to_thread(services.thaw, "s3")
        else:
            service = {"temporal": "temporal", "s3_restart": "s3", "catalog": "catalog"}[fault.kind]
            await asyncio.to_thread(services.stop, service)
            try:
                await asyncio.sleep(fault.duration_s)
            finally:
                await asyncio.to_thread(services.restore)

    async def _catalog_items(self) -> set[tuple[str, str]]:
        for _ in range(60):
            with contextlib.suppress(Exception):
                return {
                    (collection, str(item.get("id")))
                    for collection in await self.catalog.collection_ids()
                    for item in await self.catalog.all_items(collection)
                }
            await asyncio.sleep(1.0)
        raise RuntimeError("the catalog did not answer: no record of what the S3 restart took")

    async def _station(self, record: Struck) -> None:
        fault = record.fault
        self._stations.append(fault)
        record.began_s = self.now()
        await self._put_station_faults()
        try:
            await asyncio.sleep(fault.duration_s)
        finally:
            self._stations.remove(fault)
            await self._put_station_faults()
        record.outcome = "injected"

    async def _put_station_faults(self) -> None:
        stations: dict[str, dict[str, Any]] = {}
        for fault in self._stations:
            key = STATION_FAULTS[fault.kind]
            current = stations.setdefault(str(fault.station), {})
            if key == "outage":
                current[key] = True
            elif key == "latency_ms":
                current[key] = max(int(fault.value), current.get(key, 0))
            else:
                current[key] = max(fault.value, current.get(key, 0.0))
        response = await self.http.put(f"{self.simulator_url}/_faults", json={"stations": stations})
        response.raise_for_status()

    async def _kill_eopf(self, record: Struck) -> None:
        """SIGKILL the driver of a running EOPF run of the soak (what the OOM killer does), once one runs."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + EOPF_WAIT_S
        while loop.time() < deadline:
            drivers = await asyncio.to_thread(eopf_drivers, self.run_prefix)
            if drivers:
                pid, run = sorted(drivers.items())[0]
                record.began_s = self.now()
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                record.outcome, record.detail = "injected", f"EOPF driver {pid} of run {run}"
                return
            await asyncio.sleep(0.5)
        record.outcome = f"skipped: no EOPF run of the soak within {EOPF_WAIT_S:.0f} s"

    async def clear_all(self) -> None:
        """Nothing of any fault left: stations behave, servers run, workers run."""
        self._stations.clear()
        with contextlib.suppress(httpx.HTTPError):
            await self.http.delete(f"{self.simulator_url}/_faults")
        async with self._service_lock:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.services.thaw, "s3")
            await asyncio.to_thread(self.services.restore)
        await self.workers.ensure_running()

    def by_kind(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for record in self.struck:
            outcome = record.outcome.split(":", 1)[0]
            kind = counts.setdefault(record.fault.kind, {})
            kind[outcome] = kind.get(outcome, 0) + 1
        return counts
