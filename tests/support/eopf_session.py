"""A small CADIP session and orbit file made with the simulator's own generators, for the processor tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rs_simulator import earth_explorer
from rs_simulator.cadu import CaduContent, decode_headers, frame_count

SESSION_ID = "S1A_20241114143038056552"
SESSION_START = datetime(2024, 11, 14, 14, 30, 38, 477000, tzinfo=UTC)
SESSION_STOP = datetime(2024, 11, 14, 14, 33, 22, 662000, tzinfo=UTC)
ORBIT_NAME = "S1A_OPER_AUX_RESORB_OPOD_20241128T002700_V20241110T120000_20241126T120000.EOF"


@dataclass
class GeneratedSession:
    """Chunk files by name, and what a correct decoder must find in them."""

    files: dict[str, bytes] = field(default_factory=dict)
    frames: dict[int, int] = field(default_factory=dict)
    """CADUs per virtual channel, counted by the simulator's reference decoder."""
    gaps: dict[int, int] = field(default_factory=dict)
    missing: dict[int, int] = field(default_factory=dict)


def make_session(
    chunk_sizes: tuple[int, ...] = (65536, 65536, 50000), skipped: dict[int, int] | None = None
) -> GeneratedSession:
    """Two channels of chunk files; `skipped[channel]` frames are left out between its first two blocks.

    The last chunk is cut mid-frame (50000 bytes), as real final blocks are.
    """
    skipped = skipped or {}
    session = GeneratedSession()
    for channel in (1, 2):
        counter = 0
        for block, size in enumerate(chunk_sizes, start=1):
            if block == 2:
                counter += skipped.get(channel, 0)
            content = CaduContent(size, "S1A", channel, counter, key=channel * 100 + block, seed=7)
            data = content.read(0, size)
            session.files[f"DCS_04_{SESSION_ID}_ch{channel}_DSDB_{block:05d}.raw"] = data
            session.frames[channel] = session.frames.get(channel, 0) + len(decode_headers(data))
            counter += frame_count(size)
        session.gaps[channel] = 1 if skipped.get(channel) else 0
        session.missing[channel] = skipped.get(channel, 0)
    return session


def make_orbit_file() -> bytes:
    """A RESORB-like orbit file whose state vectors span the session (as the simulator's AUXIP serves)."""
    start = datetime(2024, 11, 10, 12, tzinfo=UTC)
    orbit = earth_explorer.OrbitFile(
        file_name=ORBIT_NAME.removesuffix(".EOF"),
        file_type="AUX_RESORB",
        satellite="S1A",
        validity_start=start,
        validity_stop=start + timedelta(days=16),
        created=start + timedelta(days=17),
        system="OPOD",
        version=1,
        phase_key=11,
    )
    return earth_explorer.render(orbit)
