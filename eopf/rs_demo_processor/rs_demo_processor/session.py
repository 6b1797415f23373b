"""What CADIP names tell: chunk file names (channel, block) and session ids (satellite, start, orbit)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

# DCS_04_S1A_20241114143038056552_ch1_DSDB_00001.raw (RS sample; the simulator names its chunks the same way)
_CHUNK_NAME = re.compile(
    r"^DCS_(?P<unit>\w\w)_(?P<session>[A-Z0-9]{3}_\d{20})_ch(?P<channel>\d+)_DSDB_(?P<block>\d+)\."
)
# S1A_20241114143038056552: satellite, acquisition start to the second, then the 6-digit downlink orbit
_SESSION_ID = re.compile(r"^(?P<satellite>[A-Z0-9]{3})_(?P<start>\d{14})(?P<orbit>\d{6})$")


@dataclass(frozen=True)
class ChunkName:
    """The parts of a CADIP chunk file name that order the frames of a session."""

    file_name: str
    session_id: str
    channel: int
    block: int


@dataclass(frozen=True)
class SessionId:
    satellite: str
    start: datetime
    downlink_orbit: int

    @property
    def platform(self) -> str:
        """STAC `platform`, e.g. sentinel-1a."""
        return f"sentinel-{self.satellite[1]}{self.satellite[2:].lower()}"

    @property
    def mission(self) -> int:
        return int(self.satellite[1])


def parse_chunk_name(file_name: str) -> ChunkName | None:
    match = _CHUNK_NAME.match(file_name)
    if match is None:
        return None
    return ChunkName(file_name, match["session"], int(match["channel"]), int(match["block"]))


def parse_session_id(session_id: str) -> SessionId | None:
    match = _SESSION_ID.match(session_id)
    if match is None:
        return None
    start = datetime.strptime(match["start"], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return SessionId(match["satellite"], start, int(match["orbit"]))
