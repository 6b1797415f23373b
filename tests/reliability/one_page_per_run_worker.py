"""`python -m tests.reliability.one_page_per_run_worker`: the worker, with `StagingPages` continuing as new after
every result page (workflows/_limits.py scaled down), so that a crash test of a few hundred products meets
continue-as-new."""

from rs_ondemand import worker
from rs_ondemand.workflows import _limits

if __name__ == "__main__":
    _limits.PAGES_PER_RUN = 1
    worker.main()
