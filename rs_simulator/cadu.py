"""CCSDS-like CADU frame generator for CADIP chunk files (random access, numpy-vectorised).

Layout of a chunk file (what a processor decodes):

* The file is a sequence of 1024-byte CADUs; only the last one may be cut at the file size.
* A CADU is the 4-byte attached sync marker ``1A CF FC 1D`` followed by a 1020-byte transfer frame.
* The transfer frame starts with a 6-byte AOS-style primary header, big-endian bit fields:

  ======  =====  ===========================================================
  byte    bits   field
  ======  =====  ===========================================================
  4       7-6    version number, always ``01`` (AOS)
  4-5     13-6   spacecraft id, 8 bits, from the satellite (`SPACECRAFT_IDS`)
  5       5-0    virtual channel id, 6 bits: the CADIP channel number
  6-8     24     virtual channel frame counter, modulo 2**24
  9       8      signalling field, always 0
  ======  =====  ===========================================================

* Bytes 10-1023 are the frame data zone: opaque, deterministic pseudo-random bytes.
* The frame counter continues across the blocks of one channel of a session: block *k* starts at the
  sum of the frame counts (cut last frames included) of blocks 1..k-1 of the same channel.
"""

import numpy as np

from rs_simulator.content import ROW_BYTES, PooledContent, pool_rows, stable_key

CADU_BYTES = ROW_BYTES
SYNC_MARKER = bytes.fromhex("1ACFFC1D")
HEADER_BYTES = 6
DATA_OFFSET = len(SYNC_MARKER) + HEADER_BYTES
AOS_VERSION = 0b01
COUNTER_MODULO = 1 << 24

SPACECRAFT_IDS = {
    "S1A": 0x11,
    "S1B": 0x12,
    "S1C": 0x13,
    "S1D": 0x14,
    "S2A": 0x21,
    "S2B": 0x22,
    "S2C": 0x23,
    "S2D": 0x24,
    "S3A": 0x31,
    "S3B": 0x32,
    "S3C": 0x33,
    "S3D": 0x34,
}
"""Spacecraft ids stamped in the frame headers (simulator convention, not the real SCIDs)."""

_SYNC = np.frombuffer(SYNC_MARKER, dtype=np.uint8)


def spacecraft_id(satellite: str) -> int:
    """The 8-bit spacecraft id of a satellite code such as ``S1A``; unknown codes get a stable hash."""
    return SPACECRAFT_IDS.get(satellite, stable_key("scid", satellite) & 0xFF)


def frame_count(size: int) -> int:
    """Number of CADUs (the last one possibly cut) in a file of `size` bytes."""
    return -(-size // CADU_BYTES)


class CaduContent(PooledContent):
    """The bytes of one CADIP chunk file, generated frame by frame on demand."""

    row_bytes = CADU_BYTES

    def __init__(self, size: int, satellite: str, channel: int, first_counter: int, key: int, seed: int) -> None:
        super().__init__(size, key, seed)
        self.spacecraft_id = spacecraft_id(satellite)
        self.virtual_channel_id = channel & 0x3F
        self.first_counter = first_counter % COUNTER_MODULO

    def _rows(self, first: int, count: int) -> np.ndarray:
        frames = np.empty((count, CADU_BYTES), dtype=np.uint8)
        # Data zone first (one fancy-indexed copy of whole pool rows), then the header columns over it.
        frames[:, DATA_OFFSET:] = self._pool[pool_rows(self._key, first, count), DATA_OFFSET:]
        frames[:, : len(SYNC_MARKER)] = _SYNC
        frames[:, 4] = (AOS_VERSION << 6) | (self.spacecraft_id >> 2)
        frames[:, 5] = ((self.spacecraft_id & 0x3) << 6) | self.virtual_channel_id
        counters = (np.arange(first, first + count, dtype=np.uint32) + self.first_counter) % COUNTER_MODULO
        frames[:, 6] = counters >> 16
        frames[:, 7] = (counters >> 8) & 0xFF
        frames[:, 8] = counters & 0xFF
        frames[:, 9] = 0
        return frames


def decode_headers(data: bytes) -> list[tuple[int, int, int]]:
    """(spacecraft id, virtual channel id, frame counter) of each whole-header CADU in `data`.

    The reference decoder for the layout above, used by the tests; raises ValueError on a bad sync marker.
    """
    headers = []
    for offset in range(0, len(data) - DATA_OFFSET + 1, CADU_BYTES):
        if data[offset : offset + 4] != SYNC_MARKER:
            raise ValueError(f"no sync marker at offset {offset}")
        h = data[offset + 4 : offset + DATA_OFFSET]
        version = h[0] >> 6
        if version != AOS_VERSION:
            raise ValueError(f"unexpected version {version} at offset {offset}")
        scid = ((h[0] & 0x3F) << 2) | (h[1] >> 6)
        headers.append((scid, h[1] & 0x3F, int.from_bytes(h[2:5], "big")))
    return headers
