"""Fan-out helpers for workflow code: run coroutines concurrently, stop at the first failure."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.workflows._operator import cancel_wins


async def _cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    # Wait for them: activities cancelled with WAIT_CANCELLATION_COMPLETED finish their own cleanup first.
    await asyncio.gather(*tasks, return_exceptions=True)


async def all_or_first_error[T](coros: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Results of all coroutines in order; on the first failure (or our own cancellation) the others are
    cancelled and awaited, then that failure is raised. A cancel that every coroutine outlived (each finished
    a publication it had started) came too late: their results are returned."""
    tasks = [asyncio.create_task(c) for c in coros]
    if not tasks:
        return []
    try:
        done, pending = await workflow.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        await _cancel_all(tasks)
        if not cancel_wins() or any(task.cancelled() or task.exception() is not None for task in tasks):
            raise
        return [task.result() for task in tasks]
    for task in tasks:
        if task in done and not task.cancelled() and task.exception() is not None:
            await _cancel_all(list(pending))
            raise task.exception()  # type: ignore[misc]
    return [task.result() for task in tasks]
