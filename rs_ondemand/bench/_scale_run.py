"""One run of `bench scale`: its clients, its worker's task queue, the names of what it creates, and cleanup.
Shared by its staging parts (`scale.py`) and its DPR part (`scale_dpr.py`)."""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.service import RPCError

from rs_ondemand.bench._common import Log, StackTarget, delete_collection, delete_staged, timed_result
from rs_ondemand.names import collection_publisher_id

OWNER = "bench"


class ScaleRun:
    """The clients of one run, the task queue of its worker, and the collections and workflow ids it names."""

    def __init__(self, target: StackTarget, client: Client, http: httpx.AsyncClient, s3: Any, log: Log) -> None:
        self.settings = target.settings
        self.simulator_url = target.simulator_url or ""
        self.client, self.http, self.s3, self.log = client, http, s3, log
        self.run_id = uuid.uuid4().hex[:8]
        self.queue = f"bench-scale-{self.run_id}"

    def collection(self, name: str) -> str:
        return f"bench-{self.run_id}-{name}"

    def workflow_id(self, name: str) -> str:
        return f"bench-scale/{self.run_id}/{name}"

    async def clean(self, *collections: str) -> None:
        for collection in collections:
            await self._close_publisher(collection)
            await delete_collection(self.http, self.settings, collection)
            await delete_staged(self.s3, self.settings, OWNER, collection)

    async def _close_publisher(self, collection: str) -> None:
        """End the collection's publisher if it is still waiting for work: it runs on this run's queue, which
        nobody polls once the bench is over, so its idle timeout would never be acted on and it would stay open."""
        handle = self.client.get_workflow_handle(collection_publisher_id(collection))
        with contextlib.suppress(RPCError):  # never started, or already ended
            await handle.terminate(reason="the bench run that used it is over")

    async def execute(self, kind: str, request: Any, workflow_id: str, result_type: Any, timeout_s: float) -> Any:
        """Start a workflow on this run's queue and wait for its result: (seconds, result, its run id)."""
        began = time.perf_counter()
        handle = await self.client.start_workflow(
            kind, request, id=workflow_id, task_queue=self.queue, result_type=result_type
        )
        seconds, result = await timed_result(handle, began, timeout_s, kind)
        return seconds, result, handle.result_run_id
