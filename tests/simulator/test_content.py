"""Generated file contents: CADU layout, random access, speed, determinism and lazy MD5."""

import hashlib
import time
from collections.abc import Callable

import pytest

from rs_simulator.cadu import CADU_BYTES, SPACECRAFT_IDS, SYNC_MARKER, CaduContent, decode_headers, spacecraft_id
from rs_simulator.content import Content, NoiseContent, TextContent

MIB = 1 << 20


def cadu(size: int = 10 * CADU_BYTES + 100, first_counter: int = 7, key: int = 1, seed: int = 42) -> CaduContent:
    return CaduContent(size=size, satellite="S2B", channel=2, first_counter=first_counter, key=key, seed=seed)


def test_frame_layout() -> None:
    content = cadu()
    data = content.read(0, content.size)
    assert len(data) == content.size
    frames = decode_headers(data)
    assert len(frames) == 11  # the last frame is cut to 100 bytes, its header still whole
    assert frames == [(SPACECRAFT_IDS["S2B"], 2, 7 + i) for i in range(11)]
    assert all(data[i : i + 4] == SYNC_MARKER for i in range(0, len(data), CADU_BYTES))
    assert data[4] >> 6 == 0b01  # AOS version
    assert data[9] == 0  # signalling field


def test_counter_wraps_at_24_bits() -> None:
    content = cadu(first_counter=(1 << 24) - 2)
    assert [c for _, _, c in decode_headers(content.read(0, 4 * CADU_BYTES))] == [(1 << 24) - 2, (1 << 24) - 1, 0, 1]


@pytest.mark.parametrize("factory", [lambda: cadu(size=3 * MIB + 17), lambda: NoiseContent(3 * MIB + 17, 5, 42)])
def test_random_access_equals_sequential(factory: Callable[[], Content]) -> None:
    content = factory()
    whole = b"".join(content.iter_bytes(piece=MIB // 3))
    assert len(whole) == content.size
    for start, end in [(0, 1), (1023, 1025), (5000, 900_000), (content.size - 10, content.size), (MIB, 2 * MIB + 1)]:
        assert content.read(start, end) == whole[start:end]
    assert content.read(content.size, content.size + 10) == b""
    assert content.md5_hex() == hashlib.md5(whole).hexdigest()


def test_same_key_same_bytes_other_key_other_bytes() -> None:
    assert cadu(key=1).read(0, 5000) == cadu(key=1).read(0, 5000)
    assert cadu(key=1).read(0, 5000) != cadu(key=2).read(0, 5000)
    assert cadu(seed=1).read(0, 5000) != cadu(seed=2).read(0, 5000)
    assert NoiseContent(5000, 1, 42).read(0, 5000) != NoiseContent(5000, 2, 42).read(0, 5000)


def test_generation_is_fast() -> None:
    """≥ 300 MB/s (numpy, many frames at once); best of three to ride out a busy machine."""
    content = cadu(size=1 << 40)
    best = min(_timed(lambda: sum(len(p) for p in content.iter_bytes(0, 32 * MIB))) for _ in range(3))
    assert 32 * MIB / best > 300e6, f"{32 * MIB / best / 1e6:.0f} MB/s"


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def test_md5_is_computed_once() -> None:
    calls = []

    def factory() -> bytes:
        calls.append(1)
        return b"<doc/>"

    content = TextContent(factory)
    assert not content.md5_known
    assert content.md5_hex() == hashlib.md5(b"<doc/>").hexdigest()
    assert content.md5_known and content.md5_hex() == content.md5_hex()
    assert len(calls) == 1


def test_spacecraft_ids_are_8_bits_and_stable() -> None:
    assert spacecraft_id("S1A") == 0x11
    assert 0 <= spacecraft_id("S9Z") < 256
    assert spacecraft_id("S9Z") == spacecraft_id("S9Z")
