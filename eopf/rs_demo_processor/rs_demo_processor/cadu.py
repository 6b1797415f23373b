"""CADU frame decoding (numpy only): sync markers, AOS primary headers, per-virtual-channel continuity.

The layout is the one of the CADIP chunk files (see `rs_simulator/cadu.py` for the generator): 1024-byte CADUs,
each a 4-byte sync marker `1A CF FC 1D` then a transfer frame whose 6-byte AOS primary header holds the
version (2 bits), spacecraft id (8 bits), virtual channel id (6 bits) and a 24-bit virtual channel frame
counter. Only the last CADU of a file may be cut; it still counts when its header is whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

CADU_BYTES = 1024
SYNC_MARKER = bytes.fromhex("1ACFFC1D")
HEADER_END = 10
"""Bytes of a CADU up to the end of the primary header (marker + 6 header bytes)."""
COUNTER_MODULO = 1 << 24
AOS_VERSION = 0b01
READ_FRAMES = 8192
"""CADUs read at once (8 MiB): bounds memory whatever the chunk size (real ones are ~300 MB)."""

HEADER_DTYPE = np.dtype(
    [("sync_ok", np.bool_), ("version", np.uint8), ("scid", np.uint16), ("vcid", np.uint8), ("counter", np.uint32)]
)
_SYNC = np.frombuffer(SYNC_MARKER, dtype=np.uint8)
HEADER_FIELDS: tuple[str, ...] = HEADER_DTYPE.names or ()


def as_table(headers: np.ndarray) -> np.ndarray:
    """Header records as an (n, len(HEADER_FIELDS)) uint32 table, one column per field."""
    return np.stack([headers[name].astype(np.uint32) for name in HEADER_FIELDS], axis=1).reshape(-1, len(HEADER_FIELDS))


def from_table(table: np.ndarray) -> np.ndarray:
    """The header records of an `as_table` table."""
    out = np.empty(len(table), dtype=HEADER_DTYPE)
    for column, name in enumerate(HEADER_FIELDS):
        out[name] = table[:, column]
    return out


def decode_headers(rows: np.ndarray) -> np.ndarray:
    """Header fields of CADUs given as an (n, >=10) uint8 array of their first bytes."""
    out = np.empty(len(rows), dtype=HEADER_DTYPE)
    out["sync_ok"] = (rows[:, :4] == _SYNC).all(axis=1)
    out["version"] = rows[:, 4] >> 6
    out["scid"] = ((rows[:, 4].astype(np.uint16) & 0x3F) << 2) | (rows[:, 5] >> 6)
    out["vcid"] = rows[:, 5] & 0x3F
    out["counter"] = (rows[:, 6].astype(np.uint32) << 16) | (rows[:, 7].astype(np.uint32) << 8) | rows[:, 8]
    return out


def decode_bytes(data: bytes) -> np.ndarray:
    """Headers of every CADU of `data` whose header is whole (a cut last CADU included)."""
    whole = len(data) // CADU_BYTES
    rows = np.frombuffer(data, dtype=np.uint8, count=whole * CADU_BYTES).reshape(whole, CADU_BYTES)[:, :HEADER_END]
    tail = data[whole * CADU_BYTES :]
    if len(tail) >= HEADER_END:
        rows = np.concatenate([rows, np.frombuffer(tail[:HEADER_END], dtype=np.uint8).reshape(1, HEADER_END)])
    return decode_headers(rows)


def decode_stream(stream: BinaryIO) -> np.ndarray:
    """Headers of every CADU of a binary stream, read READ_FRAMES CADUs at a time."""
    parts = []
    while block := stream.read(READ_FRAMES * CADU_BYTES):
        # A short read before the end of a remote file would shift the frame grid: top up to a whole block.
        while len(block) % CADU_BYTES and (more := stream.read(CADU_BYTES - len(block) % CADU_BYTES)):
            block += more
        parts.append(decode_bytes(block))
    return np.concatenate(parts) if parts else np.empty(0, dtype=HEADER_DTYPE)


@dataclass
class ChannelRun:
    """What one virtual channel looks like in a stretch of frames."""

    frames: int = 0
    first_counter: int = -1
    last_counter: int = -1
    gaps: int = 0
    """Places where the frame counter does not advance by exactly one."""
    missing_frames: int = 0
    """Frames skipped over by forward jumps of the counter (backward jumps count as gaps only)."""

    def follow(self, later: ChannelRun) -> ChannelRun:
        """This run followed by `later` (the next file of the same channel), joined at the boundary."""
        if self.frames == 0:
            return later
        if later.frames == 0:
            return self
        gaps, missing = counter_jumps(np.array([self.last_counter, later.first_counter], dtype=np.uint32))
        return ChannelRun(
            frames=self.frames + later.frames,
            first_counter=self.first_counter,
            last_counter=later.last_counter,
            gaps=self.gaps + later.gaps + gaps,
            missing_frames=self.missing_frames + later.missing_frames + missing,
        )


@dataclass
class ChunkSummary:
    """Frame statistics of one chunk file."""

    frames: int = 0
    sync_errors: int = 0
    """CADUs without the sync marker where one is expected (their header is not trusted)."""
    spacecraft_ids: list[int] = field(default_factory=list)
    channels: dict[int, ChannelRun] = field(default_factory=dict)


def counter_jumps(counters: np.ndarray) -> tuple[int, int]:
    """(gaps, missing frames) in a sequence of 24-bit frame counters of one virtual channel."""
    if len(counters) < 2:
        return 0, 0
    steps = (counters[1:].astype(np.int64) - counters[:-1].astype(np.int64)) % COUNTER_MODULO
    jumps = steps[steps != 1]
    forward = jumps[(jumps > 1) & (jumps < COUNTER_MODULO // 2)]
    return len(jumps), int((forward - 1).sum())


def summarize(headers: np.ndarray) -> ChunkSummary:
    """Per-channel frame counts and counter continuity of the CADUs of one chunk file."""
    good = headers[headers["sync_ok"] & (headers["version"] == AOS_VERSION)]
    summary = ChunkSummary(
        frames=len(headers),
        sync_errors=int((~headers["sync_ok"]).sum()),
        spacecraft_ids=sorted(int(s) for s in np.unique(good["scid"])),
    )
    for vcid in np.unique(good["vcid"]):
        counters = good["counter"][good["vcid"] == vcid]
        gaps, missing = counter_jumps(counters)
        summary.channels[int(vcid)] = ChannelRun(
            frames=len(counters),
            first_counter=int(counters[0]),
            last_counter=int(counters[-1]),
            gaps=gaps,
            missing_frames=missing,
        )
    return summary


def combine(summaries: Iterable[ChunkSummary]) -> ChunkSummary:
    """The session's statistics from its chunk files' summaries, given in acquisition order per channel."""
    total = ChunkSummary()
    scids: set[int] = set()
    for summary in summaries:
        total.frames += summary.frames
        total.sync_errors += summary.sync_errors
        scids.update(summary.spacecraft_ids)
        for vcid, run in summary.channels.items():
            total.channels[vcid] = total.channels.get(vcid, ChannelRun()).follow(run)
    total.spacecraft_ids = sorted(scids)
    total.channels = dict(sorted(total.channels.items()))
    return total
