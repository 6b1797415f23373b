"""The `progress` query: one shape for every top-level workflow."""

from __future__ import annotations

from enum import StrEnum, unique

from pydantic import BaseModel, Field


@unique
class State(StrEnum):
    STARTED = "started"
    SEARCHING = "searching"
    STAGING = "staging"
    RESOLVING_ADFS = "resolving_adfs"
    PROCESSING = "processing"
    PUBLISHING = "publishing"
    CLEANING_UP = "cleaning_up"
    WAITING_FOR_OPERATOR = "waiting_for_operator"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Progress(BaseModel):
    """What an operator sees: state, current step, counts and bytes, what waits for an operator, the last error
    and the warnings."""

    state: State = State.STARTED
    step: str = ""
    items_done: int = 0
    items_total: int = 0
    items_skipped: int = 0
    assets_done: int = 0
    assets_total: int = 0
    units_done: int = 0
    units_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    waiting_steps: list[str] = Field(default_factory=list)
    """Steps waiting for an operator (the children's too): the names `retry {"step": …}` takes."""
    last_error: str | None = None
    """The error of a step still unresolved (cleared when it succeeds again), or why the request failed."""
    warnings: list[str] = Field(default_factory=list)
    """What went wrong or deserves attention without stopping the request: an operator signal ignored for its bad
    body, an optional ADF skipped, a CADIP session staged incomplete."""
