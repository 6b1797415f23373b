"""The services of a stack of the soak's own, stopped, frozen and brought back: the launcher's processes are
signalled directly (SIGKILL is a crash, SIGSTOP a server that stops answering) and `up` starts again what is not
running, at the same address. The crash tests (tests/reliability) drive their own stack with it too."""

from __future__ import annotations

import os
import signal

from rs_ondemand.stack import Stack, StackInfo, procs
from rs_ondemand.stack.health import wait_until


class ServiceControl:
    """Stop, freeze and restore the services of a stack this process brought up with `launcher`."""

    def __init__(self, launcher: Stack, info: StackInfo) -> None:
        self.launcher = launcher
        self.info = info

    def pid(self, service: str) -> int:
        pid = self.info.services[service].pid
        if pid is None:
            raise RuntimeError(f"{service} has no process")
        return pid

    def stop(self, service: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal the service's process group and wait until it is gone (SIGKILL: a crash)."""
        pid = self.pid(service)
        os.killpg(pid, sig)
        # Until its last thread has exited (`pid_running`): before, its port is not free and `up` would move it.
        wait_until(f"{service} to stop", lambda: not procs.pid_running(pid), timeout=30, log_path=None)

    def restore(self) -> StackInfo:
        """`up`: start again what is not running (same ports, same Temporal db; S3 gets its buckets back).

        Raises:
            RuntimeError: a service came back at another address (its clients would not find it).
        """
        before = dict(self.info.env)
        self.info = self.launcher.up()
        if self.info.env != before:
            raise RuntimeError("a restarted service changed its address")
        return self.info

    def freeze(self, service: str) -> None:
        """SIGSTOP: the service stops answering, and loses nothing."""
        os.killpg(self.pid(service), signal.SIGSTOP)

    def thaw(self, service: str) -> None:
        os.killpg(self.pid(service), signal.SIGCONT)
