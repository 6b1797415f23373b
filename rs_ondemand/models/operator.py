"""Operator messages (the `retry` and `cancel` signals) and the per-request operator options."""

from __future__ import annotations

from pydantic import BaseModel, Field

from rs_ondemand.models.common import OperatorInput


class RetrySignal(OperatorInput):
    """`retry`: re-run the failed step(s) of a workflow waiting for an operator."""

    step: str | None = None
    """Only the step of that name, as `progress.waiting_steps` lists it; every waiting step when omitted."""


class CancelSignal(OperatorInput):
    """`cancel`: stop with cleanup, exactly as `temporal workflow cancel` does."""

    reason: str = ""


class RequestOptions(OperatorInput):
    """How hard a request works, how long it insists before it asks an operator, and how long it then waits."""

    step_attempts: int = Field(10, ge=1, le=100)
    """Attempts of a step (search, transfer, publication) before it waits for an operator."""
    operator_wait_limit_s: int = Field(7 * 24 * 3600, ge=1)
    """How long a failed step waits for `retry` or `cancel` before the request fails."""
    max_parallel_transfers: int = Field(8, ge=1, le=256)
    """Assets one staging request streams at once, all its result pages together (the station's download slots
    bound every request together as well). A DPR request applies it to each ADF staging of each unit."""


class CancelRequest(BaseModel):
    workflow_id: str
    reason: str = ""
