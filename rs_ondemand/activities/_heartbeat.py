"""A background heartbeat for long activities, so slow I/O never starves Temporal of liveness."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType
from typing import Any

from temporalio import activity


class Heartbeater:
    """Heartbeats `details()` every few seconds while the block runs.

    Cancellation reaches an activity only through a heartbeat response, so a transfer stuck on a slow socket
    must still heartbeat: the beat runs in its own task, independent of the I/O loop.
    """

    def __init__(self, details: Callable[[], Any], interval: timedelta | None = None) -> None:
        self._details = details
        timeout = activity.info().heartbeat_timeout
        default = timeout / 4 if timeout else timedelta(seconds=5)
        self._interval = (interval or min(default, timedelta(seconds=5))).total_seconds()
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        while True:
            activity.heartbeat(self._details())
            await asyncio.sleep(self._interval)

    async def __aenter__(self) -> Heartbeater:
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
