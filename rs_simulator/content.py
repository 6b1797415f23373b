"""Byte contents of downloadable files: random-access, generated on demand, MD5 computed lazily."""

import asyncio
import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from functools import cache

import numpy as np

ROW_BYTES = 1024
"""Width of a pool row: generated contents are sequences of pool rows (one CADU frame = one row)."""

POOL_ROWS = 4096
"""4 MiB of seeded noise per seed: large enough that repeated rows are not visible, small enough to keep."""

READ_PIECE = 1 << 20
"""Bytes generated per step when streaming; bounds memory per download whatever the file size."""

_MASK64 = (1 << 64) - 1


@cache
def payload_pool(seed: int) -> np.ndarray:
    """The seeded noise pool shared by every generated file of a simulator (read-only)."""
    pool = np.random.default_rng(seed).integers(0, 256, size=(POOL_ROWS, ROW_BYTES), dtype=np.uint8)
    pool.flags.writeable = False
    return pool


def pool_rows(key: int, first: int, count: int) -> np.ndarray:
    """Pool row indices for rows `first..first+count` of the file identified by `key`.

    A splitmix64 mix of (key, row index): any row is computable without the rows before it,
    which is what makes range reads of multi-GiB files cheap.
    """
    z = np.arange(first, first + count, dtype=np.uint64)
    z = (z + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(key & _MASK64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return (z % np.uint64(POOL_ROWS)).astype(np.intp)


def stable_key(*parts: object) -> int:
    """A 64-bit key from printable parts, identical across processes (unlike `hash`)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class Content(ABC):
    """A file's bytes: size known up front, any range readable on its own, MD5 cached on first need."""

    def __init__(self) -> None:
        self._md5: str | None = None
        self._md5_lock = threading.Lock()

    @property
    @abstractmethod
    def size(self) -> int:
        """Total length in bytes."""

    @abstractmethod
    def read(self, start: int, end: int) -> bytes:
        """Bytes `start` (inclusive) to `end` (exclusive); callers keep `end - start` small (≤ a few MiB)."""

    def iter_bytes(self, start: int = 0, end: int | None = None, piece: int = READ_PIECE) -> Iterator[bytes]:
        """Yield the range `[start, end)` in pieces of at most `piece` bytes."""
        end = self.size if end is None else end
        for offset in range(start, end, piece):
            yield self.read(offset, min(offset + piece, end))

    @property
    def md5_known(self) -> bool:
        """Whether `md5_hex()` would answer without hashing (lets async callers skip a thread hop)."""
        return self._md5 is not None

    def md5_hex(self) -> str:
        """MD5 of the whole content, hashed once (blocking: call it from a worker thread for big files)."""
        with self._md5_lock:
            if self._md5 is None:
                digest = hashlib.md5(usedforsecurity=False)
                for piece in self.iter_bytes(piece=4 * READ_PIECE):
                    digest.update(piece)
                self._md5 = digest.hexdigest()
            return self._md5


class PooledContent(Content):
    """Bytes generated from the seeded pool in fixed-size rows: any range is built from the rows covering it."""

    row_bytes: int = ROW_BYTES

    def __init__(self, size: int, key: int, seed: int) -> None:
        super().__init__()
        self._size = size
        self._key = key
        self._pool = payload_pool(seed)

    @property
    def size(self) -> int:
        return self._size

    @abstractmethod
    def _rows(self, first: int, count: int) -> np.ndarray:
        """Rows `first` to `first + count` (exclusive), as a `(count, row_bytes)` uint8 array."""

    def read(self, start: int, end: int) -> bytes:
        end = min(end, self._size)
        if start >= end:
            return b""
        first = start // self.row_bytes
        count = -(-end // self.row_bytes) - first
        offset = first * self.row_bytes
        data: bytes = self._rows(first, count).reshape(-1)[start - offset : end - offset].tobytes()
        return data


class NoiseContent(PooledContent):
    """Deterministic pseudo-random bytes (PRIP products, archives): rows of the seeded pool."""

    def _rows(self, first: int, count: int) -> np.ndarray:
        rows: np.ndarray = self._pool[pool_rows(self._key, first, count)]
        return rows


class TextContent(Content):
    """Small generated documents (Earth Explorer XML): built on first use from a factory, then kept."""

    def __init__(self, factory: Callable[[], bytes]) -> None:
        super().__init__()
        self._factory = factory
        self._data: bytes | None = None

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = self._factory()
        return self._data

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, start: int, end: int) -> bytes:
        return self.data[start:end]


async def ensure_md5(contents: Iterable[Content]) -> None:
    """Hash, in a worker thread, the contents whose MD5 is not known yet (keeps the event loop free)."""
    pending = [c for c in contents if not c.md5_known]
    if pending:
        await asyncio.to_thread(lambda: [c.md5_hex() for c in pending])
