"""Take a stack down when the process owning it dies, so a killed test run leaves no servers behind."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rs_ondemand.stack import procs

if TYPE_CHECKING:
    from rs_ondemand.stack.launcher import Stack


def spawn_watchdog(state_dir: Path, *, purge: bool = False) -> subprocess.Popen[bytes]:
    """Start a detached watchdog that runs `down` on `state_dir` once this process has exited.

    The caller stops the watchdog (`terminate()`) after its own orderly `down`.
    """
    owner = os.getpid()
    argv = [
        *(sys.executable, "-m", "rs_ondemand.stack.watchdog", "--dir", str(state_dir)),
        *("--owner-pid", str(owner), "--owner-ticks", str(procs.start_ticks(owner))),
        *(["--purge"] if purge else []),
    ]
    child, _ = procs.launch(argv, env=dict(os.environ), cwd=state_dir, log_path=state_dir / "logs" / "watchdog.log")
    return child


@contextlib.contextmanager
def guarded(stack: Stack, *, purge: bool = True) -> Iterator[Stack]:
    """Take `stack` down on leaving the block, or, through a watchdog, when this process is killed first."""
    stack.state_dir.mkdir(parents=True, exist_ok=True)
    watchdog = spawn_watchdog(stack.state_dir, purge=purge)
    try:
        yield stack
    finally:
        try:
            stack.down(purge=purge)
        finally:
            watchdog.terminate()
            watchdog.wait(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rs_ondemand.stack.watchdog", description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="state dir of the stack")
    parser.add_argument("--owner-pid", type=int, required=True)
    parser.add_argument("--owner-ticks", type=int, required=True, help="start time of the owner (pid reuse)")
    parser.add_argument("--purge", action="store_true", help="also delete the stack's data")
    args = parser.parse_args(argv)
    owner = procs.ProcessRecord(pid=args.owner_pid, pgid=args.owner_pid, start_ticks=args.owner_ticks, argv=[])
    while procs.is_alive(owner):
        time.sleep(1.0)
    from rs_ondemand.stack.launcher import Stack

    print(f"owner {args.owner_pid} is gone: taking the stack in {args.dir} down", flush=True)
    stopped = Stack(args.dir, notify=lambda message: print(message, flush=True)).down(purge=args.purge)
    print(f"stopped: {', '.join(stopped) or 'nothing'}", flush=True)


if __name__ == "__main__":
    main()
