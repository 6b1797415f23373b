"""`python -m tests.reliability.one_page_per_run_worker`: the worker, with `StagingPages` continuing as new after
every result page (workflows/_limits.py scaled down), so that a crash test of a few hundred products meets
continue-as-new; its heartbeat timeouts scaled down too (`short_heartbeats_worker`)."""

from rs_ondemand import worker
from rs_ondemand.workflows import _limits
from tests.reliability.short_heartbeats_worker import scale_down

if __name__ == "__main__":
    _limits.PAGES_PER_RUN = 1
    scale_down()
    worker.main()
