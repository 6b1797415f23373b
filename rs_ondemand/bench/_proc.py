"""Process memory (from /proc) and a description of the machine, for benchmark reports (Linux only)."""

from __future__ import annotations

import contextlib
import os
import platform
import threading
from pathlib import Path
from typing import Any

MIB = 1 << 20


def _status_kib(pid: int, field: str) -> int | None:
    """A `kB` field of /proc/<pid>/status (`VmRSS`, `VmHWM`), or None if the process or the field is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time `pid` has used so far (all its threads), or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float | None:
    kib = _status_kib(pid, "VmRSS")
    return kib / 1024 if kib is not None else None


def reset_peak_rss(pid: int) -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of `pid` (writing 5 to clear_refs); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def kernel_peak_rss_mib(pid: int) -> float | None:
    kib = _status_kib(pid, "VmHWM")
    return kib / 1024 if kib is not None else None


class RssSampler:
    """Samples a process's VmRSS every `interval` seconds in a thread while the `with` block runs.

    A thread, not a task: when the sampled process is this one (an in-process worker) its event loop is busy
    with the very work being measured. The kernel's own peak mark is also reset on entry and read on exit,
    so a spike shorter than the interval is not missed (when /proc/<pid>/clear_refs is writable).
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.before: float | None = None
        """VmRSS just before the block (MiB)."""
        self.sampled_peak: float | None = None
        self.kernel_peak: float | None = None
        """VmHWM since entry (MiB), None if the mark could not be reset."""
        self.samples = 0
        self.cpu_s: float | None = None
        """CPU seconds the process used during the block."""
        self._cpu_before: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._hwm_reset = False

    @property
    def peak(self) -> float | None:
        values = [v for v in (self.before, self.sampled_peak, self.kernel_peak) if v is not None]
        return max(values) if values else None

    def _sample(self) -> None:
        value = rss_mib(self.pid)
        if value is not None:
            self.samples += 1
            self.sampled_peak = value if self.sampled_peak is None else max(self.sampled_peak, value)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._hwm_reset = reset_peak_rss(self.pid)
        self.before = rss_mib(self.pid)
        self._cpu_before = cpu_seconds(self.pid)
        self._thread = threading.Thread(target=self._run, name=f"rss-sampler-{self.pid}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        cpu_after = cpu_seconds(self.pid)
        if self._cpu_before is not None and cpu_after is not None:
            self.cpu_s = cpu_after - self._cpu_before
        if self._hwm_reset:
            self.kernel_peak = kernel_peak_rss_mib(self.pid)


def machine() -> dict[str, Any]:
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / (1 << 20), 1)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpus": cpus, "mem_gib": mem_gib, "python": platform.python_version()}
