"""What must hold after the soak, once the last fault cleared and every request settled; each invariant counts
its violations and names the requests (workflow ids) and objects they are about.

A restart of moto loses every object (it keeps them in memory). What it takes is not the product's doing: an
item whose objects are missing is excused when it was in the catalog when S3 was back (`s3_losses`), and a
request that failed, or that an operator cancelled after retrying in vain, is excused when an S3 restart
happened while it (or the stagings of its inputs) ran. The invariant there is that nothing is published after
what it is made of was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError

from rs_ondemand.activities.catalog_client import CatalogClient
from rs_ondemand.activities.storage import ObjectStore, manifest_prefix
from rs_ondemand.bench._common import request_histories
from rs_ondemand.bench.chaos.faults import S3Loss
from rs_ondemand.bench.chaos.procs import eopf_run_processes
from rs_ondemand.bench.chaos.requests import Request
from rs_ondemand.bench.chaos.workload import OWNER
from rs_ondemand.config import Settings
from rs_ondemand.names import safe_segment
from rs_ondemand.starter.storage_check import check_storage

MAX_HISTORY_EVENTS = 10_000
PROCESS_GRACE_S = 15.0
# A bearer token or a token endpoint's answer as written out: a value, not the source line of a traceback that
# builds the header (`f"Bearer {...}"`).
OAUTH2_TOKEN = re.compile(r'Bearer [A-Za-z0-9._~+/-]{8,}|"access_token"\s*:\s*"[^"]')
"""How long EOPF and Dask processes get to go after the last request ended (a run's teardown takes seconds)."""
SERVER_LOGS = ("temporal", "s3", "catalog", "postgres")
"""The stack's logs searched for secrets (the station simulator, a test means, knows the credentials itself)."""

INVARIANTS = (
    "requests_completed_or_cancelled",
    "catalog_matches_storage",
    "no_duplicate_items",
    "cancelled_left_nothing_unpublished",
    "no_eopf_or_dask_process_left",
    "no_secret_in_histories_or_logs",
    "histories_under_10000_events",
)


@dataclass
class Verdict:
    name: str
    violations: list[dict[str, Any]] = field(default_factory=list)
    checked: int = 0
    """What was looked at (requests, items, objects, histories, processes, texts)."""
    excused: list[dict[str, Any]] = field(default_factory=list)
    """What looked wrong but is explained by a fault the product cannot undo (an S3 restart's data loss)."""

    def add(self, **details: Any) -> None:
        self.violations.append(details)

    def as_json(self, limit: int = 20) -> dict[str, Any]:
        return {
            "violations": len(self.violations),
            "checked": self.checked,
            "excused": len(self.excused),
            "details": self.violations[:limit],
            "excused_details": self.excused[:limit],
        }


def secret_values(settings: Settings) -> dict[str, str]:
    """The configured secret values (S3 keys, every station's and the catalog's credentials), by name."""
    values: dict[str, Any] = {
        "S3 secret key": settings.s3.aws_secret_access_key,
        "S3 access key": settings.s3.aws_access_key_id,
        "catalog password": settings.catalog.password,
        "catalog client secret": settings.catalog.client_secret,
        "catalog API key": settings.catalog.api_key,
        "Temporal API key": settings.temporal.api_key,
    }
    for station in settings.station_registry().stations.values():
        for what in ("password", "client_secret", "api_key"):
            values[f"{station.name} {what.replace('_', ' ')}"] = getattr(station, what)
    return {name: value.get_secret_value() for name, value in values.items() if value is not None}


def lost_in_s3(request: Request, requests: Sequence[Request], losses: Sequence[S3Loss]) -> bool:
    """Whether an S3 restart struck while `request` ran, or the stagings of its job's inputs did."""
    first = min([request.started_s] + [r.started_s for r in requests if r.job == request.job and r.role == "input"])
    end = request.ended_s if request.ended_s is not None else float("inf")
    return any(first <= loss.back_s and loss.down_s <= end for loss in losses)


def _owners(key: str, requests: Iterable[Request]) -> list[Request]:
    """The requests writing into the folder that holds data-bucket `key`."""
    return [r for r in requests if any(key.startswith(f"{OWNER}/{c}/") for c in r.collections)]


def _cancelled_only(owners: Sequence[Request]) -> bool:
    return bool(owners) and all(r.outcome == "cancelled" for r in owners)


@dataclass
class Checker:
    settings: Settings
    client: Client
    store: ObjectStore
    catalog: CatalogClient
    requests: list[Request]
    s3_losses: list[S3Loss]
    run_prefix: str
    logs: list[Path]
    verdicts: dict[str, Verdict] = field(default_factory=lambda: {name: Verdict(name) for name in INVARIANTS})

    async def check(self) -> dict[str, Verdict]:
        self.outcomes()
        await self.storage()
        await self.duplicates()
        await self.processes()
        await self.histories_and_logs()
        return self.verdicts

    def outcomes(self) -> None:
        verdict = self.verdicts["requests_completed_or_cancelled"]
        for request in self.requests:
            verdict.checked += 1
            where = {"workflow_id": request.workflow_id, "outcome": request.outcome, "error": request.error}
            if request.stuck:
                verdict.add(**where, problem="stuck: still running when the soak gave up waiting")
            elif request.outcome in ("completed", "cancelled") and not request.cancelled_by_operator:
                continue
            elif lost_in_s3(request, self.requests, self.s3_losses):
                verdict.excused.append(where | {"why": "an S3 restart lost what it was working on"})
            else:
                verdict.add(
                    **where, problem=f"{request.outcome}" + (" by the operator" * request.cancelled_by_operator)
                )

    async def storage(self) -> None:
        report = await check_storage(self.store, self.catalog, set(), timedelta(0))
        catalog, cancelled = (
            self.verdicts["catalog_matches_storage"],
            self.verdicts["cancelled_left_nothing_unpublished"],
        )
        catalog.checked = report.objects + report.items
        lost = {item for loss in self.s3_losses for item in loss.items}
        for problem in report.assets:
            where = {"collection": problem.collection, "item": problem.item, "key": problem.key}
            if problem.problem == "missing" and (problem.collection, problem.item) in lost:
                catalog.excused.append(where | {"why": "published before an S3 restart"})
            else:
                catalog.add(**where, problem=problem.problem)
        leftovers = [(key, "unreferenced object") for key in report.unreferenced + report.kept]
        leftovers += [(upload["key"], "multipart upload left") for upload in report.uploads]
        for key, what in leftovers:
            owners = _owners(key, self.requests)
            verdict = cancelled if _cancelled_only(owners) else catalog
            verdict.add(key=key, problem=what, workflow_ids=[r.workflow_id for r in owners])
        for key in report.checkpoints:
            catalog.add(key=key, problem="transfer checkpoint left")
        # The work bucket: manifests of searches, EOPF payloads, checkpoints. Once every request ended, nothing
        # there belongs to anything.
        work = self.settings.s3.rs_work_bucket
        async for obj in self.store.list_objects(work, ""):
            key = obj["key"]
            owners = [r for r in self.requests if _work_key_of(key, r.workflow_id)]
            verdict = cancelled if _cancelled_only(owners) else catalog
            if key not in report.checkpoints:
                verdict.add(
                    key=f"{work}/{key}", problem="left in the work bucket", workflow_ids=[r.workflow_id for r in owners]
                )
        cancelled.checked = sum(r.outcome == "cancelled" for r in self.requests)

    async def duplicates(self) -> None:
        verdict = self.verdicts["no_duplicate_items"]
        lineage: dict[str, list[tuple[str, str]]] = {}
        for collection in await self.catalog.collection_ids():
            items = await self.catalog.all_items(collection)
            ids = [str(item.get("id")) for item in items]
            verdict.checked += len(ids)
            for item_id in {i for i in ids if ids.count(i) > 1}:
                verdict.add(collection=collection, item=item_id, problem=f"listed {ids.count(item_id)} times")
            for item in items:
                made_by = str((item.get("properties") or {}).get("processing:lineage") or "").rsplit(" ", 1)[-1]
                if made_by:
                    lineage.setdefault(made_by, []).append((collection, str(item.get("id"))))
        for request in self.requests:
            published = getattr(request.result, "published", None)
            made = lineage.get(request.workflow_id, [])
            if published is not None and len(made) > len(published):
                verdict.add(
                    workflow_id=request.workflow_id,
                    problem=f"{len(made)} items made by it, {len(published)} products in its result",
                    items=made,
                )

    async def processes(self) -> None:
        verdict = self.verdicts["no_eopf_or_dask_process_left"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PROCESS_GRACE_S
        left = await asyncio.to_thread(eopf_run_processes, self.run_prefix)
        while left and loop.time() < deadline:
            await asyncio.sleep(1.0)
            left = await asyncio.to_thread(eopf_run_processes, self.run_prefix)
        verdict.checked = sum(r.workflow == "DprProcessing" for r in self.requests)
        for pid, run in sorted(left.items()):
            verdict.add(pid=pid, run=run, command=_command(pid))

    async def histories_and_logs(self) -> None:
        secrets_verdict, sizes = (
            self.verdicts["no_secret_in_histories_or_logs"],
            self.verdicts["histories_under_10000_events"],
        )
        secrets = secret_values(self.settings)

        def search(where: str, text: str) -> None:
            secrets_verdict.checked += 1
            for name, value in secrets.items():
                if value in text:
                    secrets_verdict.add(where=where, problem=f"{name} in it")
            if OAUTH2_TOKEN.search(text):
                secrets_verdict.add(where=where, problem="an OAuth2 token in it")

        def visit(history: WorkflowHistory) -> None:
            sizes.checked += 1
            events = len(history.events)
            if events >= MAX_HISTORY_EVENTS:
                sizes.add(workflow_id=history.workflow_id, events=events)
            search(f"history of {history.workflow_id}", history.to_json())

        for request in self.requests:
            with contextlib.suppress(RPCError):
                await request_histories(self.client, request.workflow_id, visit=visit)
        for path in self.logs:
            if path.exists():
                search(str(path), await asyncio.to_thread(path.read_text, errors="replace"))


def _work_key_of(key: str, workflow_id: str) -> bool:
    """Whether work-bucket `key` is the request's: a search manifest, or its EOPF payload (`dpr/<run id>/`)."""
    return key.startswith(manifest_prefix(workflow_id)) or key.startswith(f"dpr/{safe_segment(workflow_id)}-")


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:300]
    except OSError:
        return "?"
