"""Named activity options: every timeout and retry choice of the workflows, with its reason.

Steps that wait for an operator take their preset through `with_attempts`, which caps the attempts at the
request's `options.step_attempts`; cleanup and the processor run keep their own policy."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType

# --- Retry policy shared by the calls to stations and the catalog

_TRANSIENT = RetryPolicy(
    # Station and catalog hiccups (5xx, resets, restarts) usually last seconds to a minute: back off up to 30 s
    # and give up after about two and a half minutes of trying, so that a real outage surfaces instead of hiding.
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)


# --- Short calls: searches, catalog reads and writes, plans

SEARCH: dict[str, Any] = {
    # A STAC search, including paging through every result page and writing each page to the work bucket.
    "start_to_close_timeout": timedelta(minutes=5),
    "retry_policy": _TRANSIENT,
}

CATALOG: dict[str, Any] = {
    # One exchange with the catalog or the buckets (read items, check what is staged, publish a batch, read a
    # manifest page, write a payload, plan a page of transfers): seconds.
    "start_to_close_timeout": timedelta(minutes=2),
    "retry_policy": _TRANSIENT,
}

PUBLISH: dict[str, Any] = {
    # Hand a batch to the collection's publisher and wait for its write: queued behind the other requests'
    # batches of that collection, and as long as the publisher's own retries when the catalog is down. The
    # heartbeat notices a dead worker; after a cancel the activity waits for a write already handed over, so
    # that the request's cleanup sees what was published.
    "start_to_close_timeout": timedelta(minutes=30),
    "heartbeat_timeout": timedelta(seconds=30),
    "retry_policy": _TRANSIENT,
    "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
}

PLAN: dict[str, Any] = {
    # Reading a task table and building queries: CPU only, seconds. A bad task table is a non-retryable error
    # (the request's); only an unexpected worker hiccup is worth the retries.
    "start_to_close_timeout": timedelta(minutes=2),
    "retry_policy": _TRANSIENT,
}

# --- Long activities: transfers and processor runs

TRANSFER: dict[str, Any] = {
    # One asset can be GBs on a slow link: no tight bound on the attempt, but a dead worker or a stalled
    # socket is noticed through the heartbeat within 15 s.
    "start_to_close_timeout": timedelta(hours=6),
    "heartbeat_timeout": timedelta(seconds=15),
    "retry_policy": _TRANSIENT,
    # Wait until the activity has aborted its multipart upload before the workflow cleans up after a cancel.
    "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
}

PROCESSOR: dict[str, Any] = {
    # One EOPF run: hours for real L0/L1 processors. The activity heartbeats every few seconds from EOPF's
    # progress, so a dead worker is noticed within a minute; a cancel kills the process group first.
    "start_to_close_timeout": timedelta(hours=12),
    "heartbeat_timeout": timedelta(seconds=60),
    # A run that EOPF itself failed is not retried blindly (it may have failed on its data): the operator decides
    # (`retry`). A lost worker (heartbeat timeout) is retried: the next attempt kills what is left of the last.
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=5), maximum_attempts=3, non_retryable_error_types=["ProcessorFailedError"]
    ),
    # Wait until the process group is gone before the workflow removes the run's outputs.
    "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
}

# --- Cleanup and requests to the Temporal server

CLEANUP: dict[str, Any] = {
    # Cleanup must happen even if S3 is briefly down: retry for longer than the work it cleans up after.
    # No heartbeat: a worker killed while it cleans up is noticed at the timeout only, so it is short (a request
    # waited 10 minutes for its manifests' removal after a crash). Deleting a request's objects takes seconds.
    "start_to_close_timeout": timedelta(minutes=2),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=30),
}

DISCARD: dict[str, Any] = {
    # A cleanup handed to the collection's publisher waits behind the write in progress (as long as a publication
    # can take when the catalog is slow); the heartbeat notices a dead worker, the retries are the cleanup's.
    "start_to_close_timeout": PUBLISH["start_to_close_timeout"],
    "heartbeat_timeout": PUBLISH["heartbeat_timeout"],
    "retry_policy": CLEANUP["retry_policy"],
}

CANCEL_REQUEST: dict[str, Any] = {
    # The `cancel` signal's local activity asks the server to cancel this workflow: one RPC, seconds; the default
    # policy retries it until the server answers (a frontend restart).
    "start_to_close_timeout": timedelta(seconds=30),
}


# --- Operator-controlled steps


def with_attempts(preset: dict[str, Any], attempts: int) -> dict[str, Any]:
    """`preset` with its retry policy limited to `attempts` (a request's `step_attempts`)."""
    return {**preset, "retry_policy": dataclasses.replace(preset["retry_policy"], maximum_attempts=attempts)}
