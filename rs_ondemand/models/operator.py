"""Operator messages (the `retry` and `cancel` signals) and the per-request operator options."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RetrySignal(BaseModel):
    """`retry`: re-run the failed step(s) of a workflow waiting for an operator."""

    step: str | None = None
    """Only the step of that name (as `progress.step` shows it); every waiting step when omitted."""


class CancelSignal(BaseModel):
    """`cancel`: stop with cleanup, exactly as `temporal workflow cancel` does."""

    reason: str = ""


class RequestOptions(BaseModel):
    """How long a request insists before it asks an operator, and how long it then waits."""

    step_attempts: int = Field(10, ge=1, le=100)
    """Attempts of a step (search, transfer, publication) before it waits for an operator."""
    operator_wait_limit_s: int = Field(7 * 24 * 3600, ge=1)
    """How long a failed step waits for `retry` or `cancel` before the request fails."""


class CancelRequest(BaseModel):
    workflow_id: str
    reason: str = ""
