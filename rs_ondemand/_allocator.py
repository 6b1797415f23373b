"""Allocator tuning for the worker: streamed parts are large buffers allocated and freed over and over."""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_large_buffers(mmap_threshold: int = 64 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Stop glibc from handing every freed multipart buffer back to the kernel: each part would otherwise be
    page-faulted in afresh (measured: ~780,000 faults and ~1.8 s of CPU per GiB staged). Memory stays bounded
    by the parts in flight. Returns False where glibc's `mallopt` is not available (no change then)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold)
        )
    except (OSError, AttributeError):
        return False
