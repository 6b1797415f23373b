"""The soak's record of each workflow it started (`Request`), the outcome a failure gives it, and client calls that
outlast a Temporal server restart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError, TerminatedError
from temporalio.service import RPCError


@dataclass
class Request:
    """One workflow the soak started (or a schedule started for it), and how it ended."""

    workflow_id: str
    workflow: str
    job: int
    role: str
    """`main`, `duplicate`, `input` (a DPR job's staging), `scheduled`."""
    collections: list[str]
    """Catalog collections it writes into (its folders `<owner>/<collection>/` in the data bucket)."""
    started_s: float
    cancel_after_s: float | None = None
    cancelled_at_s: float | None = None
    ended_s: float | None = None
    outcome: str | None = None
    """`completed`, `cancelled`, `failed`, `terminated`; None while running."""
    error: str | None = None
    retried_at_s: list[float] = field(default_factory=list)
    """When the operator retried it."""
    cancelled_by_operator: bool = False
    """Cancelled after retries in vain, as an operator does when S3 lost what it needs."""
    stuck: bool = False
    """Still running when the soak gave up waiting (then terminated)."""
    result: Any = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "result"}


def outcome_of(err: WorkflowFailureError) -> tuple[str, str]:
    cause: BaseException | None = err.cause
    if isinstance(cause, CancelledError):
        return "cancelled", str(cause)
    if isinstance(cause, TerminatedError):
        return "terminated", str(cause)
    messages = []
    while cause is not None:
        messages.append(str(cause))
        cause = getattr(cause, "cause", None)
    return "failed", " <- ".join(messages)[:2000]


async def despite_outages[T](call: Callable[[], Awaitable[T]], deadline_s: float = 300.0) -> T:
    """`call()`, again while the Temporal server does not answer (a restart), for at most `deadline_s`."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline_s
    while True:
        try:
            return await call()
        except RPCError:
            if loop.time() > give_up:
                raise
            await asyncio.sleep(1.0)
