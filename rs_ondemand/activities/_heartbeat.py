"""A background heartbeat for long activities, so slow I/O never starves Temporal of liveness."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType
from typing import Any

from temporalio import activity

PROGRESS_EVERY_S = 0.5
"""Least time between two heartbeats of `Heartbeater.progress`."""


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
        self._last = 0.0

    def progress(self, at_most_every_s: float = PROGRESS_EVERY_S) -> None:
        """Heartbeat now that a unit of work (a file of a batch) is done, unless one went out less than
        `at_most_every_s` ago: the server is told at most every few seconds anyway, and recording a heartbeat
        costs about as much CPU as transferring a small file."""
        now = time.monotonic()
        if now - self._last >= at_most_every_s:
            self._last = now
            activity.heartbeat(self._details())

    async def _beat(self) -> None:
        while True:
            self._last = time.monotonic()
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
