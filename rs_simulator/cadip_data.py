"""Seeded CADIP sessions: the real S1A session sample (sizes scaled down) plus generated ones."""

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from rs_simulator.cadu import CaduContent, frame_count
from rs_simulator.catalogue import ChunkFile, Session
from rs_simulator.content import stable_key
from rs_simulator.dates import iso_ms, parse_datetime, utc
from rs_simulator.seeding import absolute_orbit, rng_for, uuid_from

REAL_SESSION_FILE = "cadip-session-S1A_20241114143038056552.json"

# (satellite, DownlinkStart) of the generated sessions: PublicationDates spread over 2024-2025.
SEEDED_SESSIONS = (
    ("S1A", utc(2024, 2, 9, 5, 12, 44)),
    ("S2B", utc(2024, 5, 21, 10, 47, 3)),
    ("S3A", utc(2024, 8, 30, 21, 5, 16)),
    ("S1C", utc(2025, 2, 3, 17, 58, 31)),
    ("S1A", utc(2025, 6, 17, 6, 23, 9)),
    ("S2B", utc(2025, 10, 28, 11, 2, 55)),
)

_ANTENNAS = ("MSP21", "MSP26", "TLR3", "SGS1")


def _chunk_content(
    seed: int, session_id: str, satellite: str, channel: int, block: int, size: int, first: int
) -> CaduContent:
    return CaduContent(
        size=size,
        satellite=satellite,
        channel=channel,
        first_counter=first,
        key=stable_key(seed, "cadu", session_id, channel, block),
        seed=seed,
    )


def attach_contents(seed: int, session_fields: dict[str, Any], files: list[dict[str, Any]]) -> list[ChunkFile]:
    """Chunk files with CADU contents whose frame counters continue across the blocks of each channel."""
    satellite = str(session_fields["Satellite"])
    session_id = str(session_fields["SessionId"])
    next_counter: dict[int, int] = {}
    by_block = sorted(files, key=lambda f: (f["Channel"], f["BlockNumber"]))
    contents = {}
    for f in by_block:
        first = next_counter.get(f["Channel"], 0)
        contents[f["Id"]] = _chunk_content(
            seed, session_id, satellite, f["Channel"], f["BlockNumber"], f["Size"], first
        )
        next_counter[f["Channel"]] = first + frame_count(f["Size"])
    return [ChunkFile(fields=f, content=contents[f["Id"]], satellite=satellite) for f in files]


def real_session(seed: int, chunk_size: int) -> Session:
    """The real session sample, same ids, names and fields, sizes scaled so a full chunk is `chunk_size`."""
    text = resources.files("rs_simulator").joinpath("data", REAL_SESSION_FILE).read_text()
    raw = json.loads(text)["value"][0]
    files = raw.pop("Files")
    raw.pop("QualityInfo", None)
    nominal = max(f["Size"] for f in files)
    for f in files:
        f["Size"] = max(1, round(f["Size"] * chunk_size / nominal))
    return Session(fields=raw, files=attach_contents(seed, raw, files))


@dataclass(frozen=True)
class SessionPlan:
    """What a generated session looks like; every other field is drawn from `rng`."""

    satellite: str
    downlink_start: datetime
    channels: int
    blocks_per_channel: int
    chunk_size: int
    final_block_fraction: float
    session_id: str | None = None
    publication_date: datetime | None = None
    missing_final_block: tuple[int, ...] = ()
    """Channels whose last block is published without `FinalBlock` (the session is incomplete)."""


def generate_session(seed: int, plan: SessionPlan, rng: random.Random) -> Session:
    """A session with `channels * blocks_per_channel` chunk files named as the real stations do."""
    start = plan.downlink_start
    published = plan.publication_date or start + timedelta(seconds=rng.uniform(20, 40))
    orbit = absolute_orbit(plan.satellite, start)
    session_id = plan.session_id or f"{plan.satellite}_{start:%Y%m%d%H%M%S}{orbit:06d}"
    unit = f"{rng.randint(1, 4):02d}"
    duration = timedelta(seconds=max(60, plan.blocks_per_channel * 8 + rng.randint(10, 40)))
    fields: dict[str, Any] = {
        "Id": uuid_from(rng),
        "SessionId": session_id,
        "NumChannels": plan.channels,
        "PublicationDate": iso_ms(published),
        "Satellite": plan.satellite,
        "StationUnitId": unit,
        "DownlinkOrbit": orbit,
        "AcquisitionId": f"{orbit}_1",
        "AntennaId": rng.choice(_ANTENNAS),
        "FrontEndId": f"DEM-KSPT-SENT-DFEP{rng.randint(1, 6)}",
        "Retransfer": False,
        "AntennaStatusOK": True,
        "FrontEndStatusOK": True,
        "PlannedDataStart": iso_ms(start - timedelta(seconds=rng.uniform(3, 8))),
        "PlannedDataStop": iso_ms(start + duration + timedelta(seconds=rng.uniform(20, 40))),
        "DownlinkStart": iso_ms(start),
        "DownlinkStop": iso_ms(start + duration),
        "DownlinkStatusOK": True,
        "DeliveryPushOK": True,
    }
    files = []
    for block in range(1, plan.blocks_per_channel + 1):
        for channel in range(1, plan.channels + 1):
            last = block == plan.blocks_per_channel
            final = last and channel not in plan.missing_final_block
            size = max(1, round(plan.chunk_size * plan.final_block_fraction)) if last else plan.chunk_size
            file_published = published + timedelta(seconds=15 + 8 * block + rng.uniform(0, 3))
            files.append(
                {
                    "Id": uuid_from(rng),
                    "Name": f"DCS_{unit}_{session_id}_ch{channel}_DSDB_{block:05d}.raw",
                    "SessionId": session_id,
                    "Channel": channel,
                    "BlockNumber": block,
                    "FinalBlock": final,
                    "PublicationDate": iso_ms(file_published),
                    "EvictionDate": iso_ms((file_published + timedelta(days=7)).replace(second=0, microsecond=0)),
                    "Size": size,
                    "Retransfer": False,
                }
            )
    return Session(fields=fields, files=attach_contents(seed, fields, files))


def seeded_sessions(seed: int, chunk_size: int) -> list[Session]:
    """The CADIP catalogue at start-up, in PublicationDate order."""
    sessions = [real_session(seed, chunk_size)]
    for index, (satellite, start) in enumerate(SEEDED_SESSIONS):
        rng = rng_for(seed, "cadip", index)
        plan = SessionPlan(
            satellite=satellite,
            downlink_start=start,
            channels=2,
            blocks_per_channel=rng.randint(5, 20),
            chunk_size=chunk_size,
            final_block_fraction=rng.uniform(0.2, 0.9),
        )
        sessions.append(generate_session(seed, plan, rng))
    return sorted(sessions, key=lambda s: parse_datetime(s.fields["PublicationDate"]))


def requested_session(
    seed: int,
    satellite: str,
    channels: int,
    chunks_per_channel: int,
    chunk_size: int,
    session_id: str | None = None,
    publication_date: datetime | None = None,
    missing_final_block: tuple[int, ...] = (),
) -> Session:
    """A session asked for through `/_catalogue/sessions`: every chunk is exactly `chunk_size` bytes.

    Everything else derives from the parameters, so asking twice gives the same session.
    """
    when = publication_date.isoformat() if publication_date else None
    parameters = (session_id, satellite, channels, chunks_per_channel, chunk_size, when)
    # An incomplete variant is another session: its ids differ from the complete one's.
    rng = rng_for(
        seed, "requested-session", *parameters, *(("incomplete", *missing_final_block) if missing_final_block else ())
    )
    if publication_date is None:
        publication_date = utc(2025, 1, 1) + timedelta(seconds=rng.randrange(365 * 86400))
    plan = SessionPlan(
        satellite=satellite,
        downlink_start=publication_date - timedelta(seconds=30),
        channels=channels,
        blocks_per_channel=chunks_per_channel,
        chunk_size=chunk_size,
        final_block_fraction=1.0,
        session_id=session_id,
        publication_date=publication_date,
        missing_final_block=missing_final_block,
    )
    return generate_session(seed, plan, rng)
