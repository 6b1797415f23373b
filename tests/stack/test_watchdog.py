"""The watchdog takes a stack down when its owner dies without doing it (a killed pytest)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from rs_ondemand.stack import procs
from rs_ondemand.stack.health import wait_until

OWNER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from rs_ondemand.stack import procs
    from rs_ondemand.stack.state import StackState
    from rs_ondemand.stack.watchdog import spawn_watchdog

    state_dir = Path(sys.argv[1])
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    _, record = procs.launch(sleeper, env=dict(os.environ), cwd=state_dir, log_path=state_dir / "logs" / "s3.log")
    StackState(services=["s3"], processes={"s3": record}).save(state_dir)
    spawn_watchdog(state_dir)
    print(record.pid, record.start_ticks, flush=True)
    os._exit(0)  # dies without any teardown, as a killed test run would
    """
)


def test_watchdog_stops_the_stack_of_a_dead_owner(tmp_path: Path) -> None:
    """A service recorded by an owner that exits abruptly is stopped by the owner's watchdog."""
    done = subprocess.run([sys.executable, "-c", OWNER, str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    pid, ticks = map(int, done.stdout.split())
    service = procs.ProcessRecord(pid=pid, pgid=pid, start_ticks=ticks, argv=[])
    log = tmp_path / "logs" / "watchdog.log"
    wait_until("service stop", lambda: not procs.is_alive(service), timeout=20, log_path=log)
    wait_until("watchdog report", lambda: "stopped: s3" in log.read_text(), timeout=10, log_path=log)
