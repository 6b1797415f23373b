"""Fan-out helpers for workflow code: run coroutines concurrently, stop at the first failure."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
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


def share_out(limit: int, parts: int) -> list[int]:
    """`limit` split into `parts` shares as even as can be (the first ones one more)."""
    return [limit // parts + (1 if i < limit % parts else 0) for i in range(parts)]


async def with_shares[T](limit: int, in_flight: int, jobs: list[Callable[[int], Coroutine[Any, Any, T]]]) -> list[T]:
    """Run `jobs` at most `in_flight` at once, each given its share of `limit` (a number of transfers) while it
    runs and handing it to the next job when it ends. Results in order; the first failure cancels the rest."""
    in_flight = min(in_flight, len(jobs), limit) or 1
    shares = share_out(limit, in_flight)
    slots = asyncio.Semaphore(in_flight)

    async def run(job: Callable[[int], Coroutine[Any, Any, T]]) -> T:
        async with slots:
            share = shares.pop()
            try:
                return await job(share)
            finally:
                shares.append(share)

    return await all_or_first_error([run(job) for job in jobs])
