"""`python -m tests.reliability.short_heartbeats_worker`: the worker, with the heartbeat timeouts of its long
activities (workflows/_options.py) scaled down, so that a crash test notices a killed worker's activities within
seconds instead of waiting out production margins. Each activity still heartbeats well inside them (a transfer or
a publication every quarter of its timeout, an EOPF run every `RS_EOPF_HEARTBEAT_S`, 2 s), and the worker passes
a heartbeat on to the server at least every 2 s.

The timeouts are changed where the workflows schedule the activities (`workflow.execute_activity_method`, which
the workflow sandbox shares with this process): changing `_options` here would not reach the workflow modules,
which the sandbox imports afresh, with their own copy of it."""

from datetime import timedelta
from typing import Any

from temporalio import workflow

from rs_ondemand import worker

PROCESSOR_HEARTBEAT_TIMEOUT = timedelta(seconds=15)
"""An EOPF run's (60 s in production)."""
TRANSFER_HEARTBEAT_TIMEOUT = timedelta(seconds=6)
"""A transfer's (15 s in production) and a publication's (30 s)."""

HEARTBEAT_TIMEOUTS = {
    "run_processor": PROCESSOR_HEARTBEAT_TIMEOUT,
    "stream_asset": TRANSFER_HEARTBEAT_TIMEOUT,
    "transfer_batch": TRANSFER_HEARTBEAT_TIMEOUT,
    "publish_in_collection": TRANSFER_HEARTBEAT_TIMEOUT,
}


def scale_down() -> None:
    """Every call scheduling one of `HEARTBEAT_TIMEOUTS`' activities gets its timeout from there."""
    schedule = workflow.execute_activity_method

    def scaled_down(activity: Any, *args: Any, **options: Any) -> Any:
        if "heartbeat_timeout" in options and (timeout := HEARTBEAT_TIMEOUTS.get(activity.__name__)):
            options["heartbeat_timeout"] = timeout
        return schedule(activity, *args, **options)

    workflow.execute_activity_method = scaled_down  # type: ignore[assignment]


if __name__ == "__main__":
    scale_down()
    worker.main()
