"""The soak's workload: the requests of its plan's jobs, started on time on the bench's task queue, cancelled or
sent twice as planned, watched to their end; and the operator, who retries what waits for one.

Every job stages into collections of its own, except where sharing is the point: a DPR job stages the
simulator's sample session (and, for the chained pipeline, its processing parameters) into collections all DPR
jobs share (a re-staging replaces what an S3 restart lost, and concurrent stagings of one session meet there),
then processes it. A duplicated job's two requests are the same request (same collection, same outputs).
Scheduled staging runs come from one Temporal schedule of the soak, triggered at the jobs' times, each after new
PRIP products were published for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError

from rs_ondemand.bench.chaos.plan import Job, SoakPlan
from rs_ondemand.bench.chaos.requests import Request, despite_outages, outcome_of
from rs_ondemand.models.dpr import DprProcessIn
from rs_ondemand.models.schedules import ScheduledStagingInput
from rs_ondemand.models.staging import AuxipStagingInput, CadipStagingInput, PripStagingInput
from rs_ondemand.names import (
    AUXIP_STAGING,
    CADIP_STAGING,
    CANCEL_SIGNAL,
    DPR_PROCESSING,
    PRIP_STAGING,
    RETRY_SIGNAL,
)
from rs_ondemand.starter.samples import SAMPLE_END, SAMPLE_SESSION, SAMPLE_START, demo_dpr_request
from rs_ondemand.starter.schedules import build_schedule, schedule_search_attributes

OWNER = "chaos"
KiB, MiB = 1024, 1024 * 1024
SESSION_COLLECTION = "chaos-session"
PP2_COLLECTION = "chaos-pp2"
PRIP_EPOCH = datetime(2033, 1, 1, tzinfo=UTC)
"""Generated PRIP and AUXIP products are valid from here on (after the seeded ones and the other benches')."""
SCHEDULED_TYPE = "CHAOSSCHED"
SCHEDULE_WINDOW_S = 6 * 3600
OPERATOR_PERIOD_S = 10.0
GIVE_UP_RETRIES = 2
"""Retries after which a request that still waits is given up (when an S3 restart explains it): the first
retry that did not help, and the wait after it."""
CHAIN_SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "dpr-demo-chain.json"

Now = Callable[[], float]


@dataclass
class Workload:
    """Runs the jobs of `plan` on `queue` and keeps every request it started in `requests`."""

    plan: SoakPlan
    client: Client
    http: httpx.AsyncClient
    simulator_url: str
    queue: str
    now: Now
    log: Callable[[str], None]
    requests: list[Request] = field(default_factory=list)
    triggers: int = 0
    """Runs of the soak's schedule triggered so far."""
    operator_period_s: float = OPERATOR_PERIOD_S
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _jobs_running: int = 0
    _scheduled: set[str] = field(default_factory=set)

    @property
    def tag(self) -> str:
        return f"s{self.plan.config.seed}"

    @property
    def schedule_id(self) -> str:
        return f"chaos-{self.tag}"

    @property
    def id_prefix(self) -> str:
        """Every workflow id of the soak starts so (and so does every EOPF run id of its DPR requests)."""
        return f"chaos/{self.tag}/"

    def collection(self, job: Job, suffix: str = "") -> str:
        return f"chaos-{job.name}{'-' + suffix if suffix else ''}"

    # --- the station data, before anything runs ----------------------------------------------------------------

    async def _simulator(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(f"{self.simulator_url.rstrip('/')}{path}", json=body)
        response.raise_for_status()
        return dict(response.json())

    def session_of(self, job: Job) -> str:
        """A session id of the real shape (S1A_ + 20 digits), per seed and job."""
        return f"S1A_77{self.plan.config.seed % 10**8:08d}{job.index:010d}"

    def window_of(self, job: Job) -> tuple[datetime, datetime]:
        start = PRIP_EPOCH + timedelta(days=2 * job.index)
        return start, start + timedelta(days=1)

    def product_type_of(self, job: Job) -> str:
        return f"CHAOS{self.plan.config.seed % 10**6}J{job.index:03d}"

    async def prepare(self) -> None:
        """Publish every generated session and product the jobs stage, and create the soak's schedule."""
        for job in self.plan.jobs:
            if job.kind in ("cadip_small", "cadip_large"):
                small = job.kind == "cadip_small"
                channels, chunks, size = (1, 4, 256 * KiB) if small else (2, 8, MiB)
                spec = {"channels": channels, "chunks_per_channel": chunks, "chunk_size": size}
                await self._simulator("/_catalogue/sessions", {"session_id": self.session_of(job), **spec})
            elif job.kind in ("prip", "auxip"):
                start, _ = self.window_of(job)
                count = 6 if job.kind == "prip" else 3
                await self._simulator(
                    "/_catalogue/products",
                    {
                        "station": job.kind,
                        "product_type": self.product_type_of(job),
                        "count": count,
                        "start": start.isoformat(),
                        "step_seconds": 600,
                        "validity_seconds": 300,
                        "size": 64 * KiB,
                    },
                )
        if any(job.kind == "scheduled" for job in self.plan.jobs):
            await self._create_schedule()

    async def _create_schedule(self) -> None:
        request = ScheduledStagingInput.model_validate(
            {
                "station": "prip",
                "env": {"owner_id": OWNER},
                "product_type": SCHEDULED_TYPE,
                "catalog_collection_identifier": f"chaos-{self.tag}-scheduled",
                "prip_collection": "prip",
                "window_seconds": SCHEDULE_WINDOW_S,
            }
        )
        # Paused: its runs are the ones the soak triggers (a 6-hour interval would not fire anyway).
        schedule = build_schedule(self.schedule_id, request, self.queue, paused=True, note="chaos soak")
        with contextlib.suppress(Exception):  # a rerun of the same seed on a kept stack
            await self.client.get_schedule_handle(self.schedule_id).delete()
        await self.client.create_schedule(
            self.schedule_id, schedule, search_attributes=schedule_search_attributes(request)
        )

    # --- starting, cancelling, watching ------------------------------------------------------------------------

    def _spawn(self, awaitable: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, stop_starting_at_s: float) -> None:
        """Start each job at its time (none after `stop_starting_at_s`); returns once all are started."""
        for job in self.plan.jobs:
            if job.at_s > stop_starting_at_s:
                break
            await asyncio.sleep(max(0.0, job.at_s - self.now()))
            self._spawn(self._job(job))

    async def _job(self, job: Job) -> None:
        self._jobs_running += 1
        self.log(f"chaos: job {job.name} at {self.now()} s")
        try:
            await self._run_job(job)
        except Exception as err:  # a job that cannot even start is the soak's problem: reported, not hidden
            self.log(f"job {job.name} could not run: {err!r}")
            record = Request(f"{self.id_prefix}{job.name}", job.kind, job.index, "main", [], self.now())
            record.outcome, record.ended_s, record.error = "failed", self.now(), f"not started: {err!r}"
            self.requests.append(record)
        finally:
            self._jobs_running -= 1

    async def _run_job(self, job: Job) -> None:
        options = {"step_attempts": job.step_attempts}
        if job.kind in ("cadip_small", "cadip_large"):
            collection = self.collection(job)
            request: Any = CadipStagingInput.for_session(OWNER, self.session_of(job), collection, options=options)
            await self._main(job, CADIP_STAGING, request, [collection])
        elif job.kind == "prip":
            collection = self.collection(job)
            request = PripStagingInput.for_window(
                OWNER, self.product_type_of(job), collection, *self.window_of(job), prip_collection="prip",
                options=options,
            )  # fmt: skip
            await self._main(job, PRIP_STAGING, request, [collection])
        elif job.kind == "auxip":
            collection = self.collection(job)
            request = AuxipStagingInput.for_window(
                OWNER, self.product_type_of(job), collection, *self.window_of(job), options=options
            )
            await self._main(job, AUXIP_STAGING, request, [collection])
        elif job.kind in ("dpr", "dpr_chain"):
            await self._dpr(job, options)
        else:
            await self._trigger(job)

    async def _dpr(self, job: Job, options: dict[str, Any]) -> None:
        inputs = [
            self._start(
                job, "input", CADIP_STAGING,
                CadipStagingInput.for_session(OWNER, SAMPLE_SESSION, SESSION_COLLECTION, options=options),
                [SESSION_COLLECTION], "session",
            )
        ]  # fmt: skip
        chain = json.loads(CHAIN_SAMPLE.read_text()) if job.kind == "dpr_chain" else None
        if chain is not None:
            pp2 = AuxipStagingInput.for_window(
                OWNER, "AUX_PP2", PP2_COLLECTION, SAMPLE_START, SAMPLE_END, options=options
            )
            inputs.append(self._start(job, "input", AUXIP_STAGING, pp2, [PP2_COLLECTION], "pp2"))
        started = await asyncio.gather(*inputs)
        ended = await asyncio.gather(*(self.ended(request) for request in started))
        if any(request.outcome != "completed" for request in ended):
            self.log(f"job {job.name}: its inputs were not staged, no processing")
            return
        aux = self.collection(job, "aux")
        if chain is None:
            outputs = [self.collection(job, "l0")]
            fields = demo_dpr_request(
                OWNER, SAMPLE_SESSION, SESSION_COLLECTION, output_collection=outputs[0], aux_collection=aux
            )
        else:
            outputs = [self.collection(job, "l1"), self.collection(job, "ql")]
            ((pp2_item, _),) = chain["adfs"].values()
            fields = chain | {
                "env": {"owner_id": OWNER},
                "input_products": [{"CADU": [SAMPLE_SESSION, SESSION_COLLECTION]}],
                "generated_product_to_collection_identifier": [
                    {"DEMOL1": ["S01DEMOL1", outputs[0]]},
                    {"QUICKLOOK": ["*", outputs[1]]},
                ],
                "auxiliary_product_to_collection_identifier": {"*": aux},
                "adfs": {"PP2": [pp2_item, PP2_COLLECTION]},
            }
        request = DprProcessIn.model_validate(fields | {"options": options})
        await self._main(job, DPR_PROCESSING, request, [*outputs, aux])

    async def _main(self, job: Job, workflow: str, request: Any, collections: list[str]) -> None:
        await self._start(job, "main", workflow, request, collections)
        if job.duplicate:
            await self._start(job, "duplicate", workflow, request, collections, "dup")

    async def _start(
        self, job: Job, role: str, workflow: str, request: Any, collections: list[str], suffix: str = ""
    ) -> Request:
        workflow_id = f"{self.id_prefix}{job.name}{'-' + suffix if suffix else ''}"
        record = Request(workflow_id, workflow, job.index, role, collections, self.now())
        if role in ("main", "duplicate"):
            record.cancel_after_s = job.cancel_after_s
        self.requests.append(record)
        handle: WorkflowHandle[Any, Any] = await despite_outages(
            lambda: self.client.start_workflow(workflow, request, id=workflow_id, task_queue=self.queue)
        )
        self._spawn(self._watch(record, handle))
        if record.cancel_after_s is not None:
            self._spawn(self._cancel_later(record, handle, job))
        return record

    async def _watch(self, record: Request, handle: WorkflowHandle[Any, Any]) -> None:
        while True:
            try:
                record.result = await handle.result()
                record.outcome = "completed"
                break
            except WorkflowFailureError as err:
                record.outcome, record.error = outcome_of(err)
                break
            except RPCError:
                await asyncio.sleep(1.0)
        record.ended_s = self.now()
        if record.outcome != "completed" and record.outcome != "cancelled":
            self.log(f"{record.workflow_id} {record.outcome}: {(record.error or '')[:300]}")

    async def _cancel_later(self, record: Request, handle: WorkflowHandle[Any, Any], job: Job) -> None:
        """Cancel as an operator does: half the jobs through Temporal's cancel, half with the `cancel` signal."""
        await asyncio.sleep(record.cancel_after_s or 0.0)
        while record.outcome is None:
            try:
                if job.index % 2:
                    await handle.cancel()
                else:
                    await handle.signal(CANCEL_SIGNAL)
                record.cancelled_at_s = self.now()
                return
            except RPCError:
                await asyncio.sleep(1.0)

    async def ended(self, record: Request) -> Request:
        while record.outcome is None:  # noqa: ASYNC110 - the watcher sets it
            await asyncio.sleep(0.5)
        return record

    # --- scheduled runs ------------------------------------------------------------------------------------------

    async def _trigger(self, job: Job) -> None:
        """New products published a few hours ago (inside the schedule's window), then one run triggered."""
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5) + timedelta(seconds=10 * job.index)
        await self._simulator(
            "/_catalogue/products",
            {"station": "prip", "product_type": SCHEDULED_TYPE, "count": 3, "start": start.isoformat(),
             "step_seconds": 1, "validity_seconds": 60, "size": 64 * KiB},
        )  # fmt: skip
        await despite_outages(lambda: self.client.get_schedule_handle(self.schedule_id).trigger())
        self.triggers += 1

    async def adopt_scheduled_runs(self) -> None:
        """Watch the runs the schedule started that the soak does not know yet."""
        if not self.triggers:
            return
        description = await despite_outages(lambda: self.client.get_schedule_handle(self.schedule_id).describe())
        info = description.info
        runs = [getattr(action, "workflow_id", None) for action in info.running_actions]
        runs += [getattr(result.action, "workflow_id", None) for result in info.recent_actions]
        query = f"TemporalScheduledById = '{self.schedule_id}'"
        runs += [execution.id async for execution in self.client.list_workflows(query)]
        for workflow_id in dict.fromkeys(run for run in runs if run):
            if workflow_id in self._scheduled:
                continue
            self._scheduled.add(workflow_id)
            collection = f"chaos-{self.tag}-scheduled"
            record = Request(workflow_id, "ScheduledStaging", -1, "scheduled", [collection], self.now())
            self.requests.append(record)
            self._spawn(self._watch(record, self.client.get_workflow_handle(workflow_id)))

    async def schedule_done(self) -> bool:
        """Whether every triggered run has started (buffered triggers wait for the run before them)."""
        if not self.triggers:
            return True
        description = await despite_outages(lambda: self.client.get_schedule_handle(self.schedule_id).describe())
        return description.info.num_actions >= self.triggers

    # --- the operator ------------------------------------------------------------------------------------------

    async def operate(self) -> None:
        """Forever: retry every request of the soak that waits for an operator (its root: `retry` is passed on
        to the children that wait), every `operator_period_s`."""
        ours = {}
        while True:
            await asyncio.sleep(self.operator_period_s)
            with contextlib.suppress(RPCError):
                await self.adopt_scheduled_runs()
                ours = {request.workflow_id: request for request in self.requests if request.outcome is None}
                query = "RsState = 'waiting_for_operator' AND ExecutionStatus = 'Running'"
                async for execution in self.client.list_workflows(query):
                    request = ours.get(execution.id)
                    if request is None:
                        continue  # a child: its root is retried
                    with contextlib.suppress(RPCError):
                        await self.client.get_workflow_handle(execution.id).signal(RETRY_SIGNAL)
                        request.retried_at_s.append(self.now())

    def running(self) -> list[Request]:
        return [request for request in self.requests if request.outcome is None]

    async def settle(self, timeout_s: float, excusable: Callable[[Request], bool]) -> list[Request]:
        """Wait until every request has ended, the operator retrying what waits more often; a request that still
        waits after `GIVE_UP_RETRIES` retries since, and that an S3 restart explains (`excusable`), is cancelled
        as an operator would. Those still running after `timeout_s` are returned (stuck) and terminated, so
        that they leave the stack."""
        began = self.now()
        self.operator_period_s = OPERATOR_PERIOD_S / 2
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            await self.adopt_scheduled_runs()
            running = self.running()
            if not running and await self.schedule_done() and not self._jobs_running:
                return []
            for request in running:
                retries = sum(at >= began for at in request.retried_at_s)
                if retries >= GIVE_UP_RETRIES and not request.cancelled_by_operator and excusable(request):
                    with contextlib.suppress(RPCError):
                        await self.client.get_workflow_handle(request.workflow_id).cancel()
                        request.cancelled_by_operator = True
            await asyncio.sleep(2.0)
        stuck = self.running()
        for request in stuck:
            request.stuck = True
            with contextlib.suppress(RPCError):
                await self.client.get_workflow_handle(request.workflow_id).terminate("chaos soak: stuck")
        return stuck

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
