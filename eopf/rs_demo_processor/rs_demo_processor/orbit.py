"""Earth Explorer orbit files (`.EOF`): validity, state vectors, and cubic Hermite interpolation between them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np


@dataclass(frozen=True)
class OrbitFile:
    """The parts of an orbit file the demo uses; times are UTC, positions in m, velocities in m/s."""

    file_name: str
    file_type: str
    validity_start: datetime
    validity_stop: datetime
    times: np.ndarray
    """OSV epochs as float seconds since the Unix epoch, increasing."""
    positions: np.ndarray
    """(n, 3) Earth-fixed positions."""
    velocities: np.ndarray
    """(n, 3) Earth-fixed velocities."""
    absolute_orbits: np.ndarray


def _utc(text: str) -> datetime:
    """Earth Explorer times such as `UTC=2024-11-14T14:30:38.000000` (fraction optional)."""
    value = text.strip().removeprefix("UTC=")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in value else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(value, fmt).replace(tzinfo=UTC)


def _text(node: ET.Element, path: str) -> str:
    found = node.find(path)
    if found is None or found.text is None:
        raise ValueError(f"orbit file has no {path}")
    return found.text


def parse_orbit_file(document: bytes) -> OrbitFile:
    """Parse an `.EOF` document; raises ValueError when it is not an orbit file with state vectors."""
    root = ET.fromstring(document)
    header = root.find("Earth_Explorer_Header/Fixed_Header")
    if header is None:
        raise ValueError("not an Earth Explorer file: no Fixed_Header")
    osvs = root.findall("Data_Block/List_of_OSVs/OSV")
    if not osvs:
        raise ValueError("orbit file has no state vectors")
    rows = sorted(
        (
            _utc(_text(osv, "UTC")).timestamp(),
            [float(_text(osv, axis)) for axis in ("X", "Y", "Z")],
            [float(_text(osv, axis)) for axis in ("VX", "VY", "VZ")],
            int(_text(osv, "Absolute_Orbit")),
        )
        for osv in osvs
    )
    return OrbitFile(
        file_name=_text(header, "File_Name"),
        file_type=_text(header, "File_Type"),
        validity_start=_utc(_text(header, "Validity_Period/Validity_Start")),
        validity_stop=_utc(_text(header, "Validity_Period/Validity_Stop")),
        times=np.array([row[0] for row in rows]),
        positions=np.array([row[1] for row in rows]),
        velocities=np.array([row[2] for row in rows]),
        absolute_orbits=np.array([row[3] for row in rows]),
    )


def interpolate(orbit: OrbitFile, when: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities at `when` (Unix seconds) by cubic Hermite interpolation of the bracketing OSVs.

    Hermite uses each OSV's velocity as the curve's derivative, so two neighbouring vectors give a smooth,
    consistent arc; outside the OSVs' time span nothing is extrapolated.
    """
    if len(orbit.times) < 2:
        raise ValueError(f"{orbit.file_name}: at least two state vectors are needed to interpolate")
    if when.min() < orbit.times[0] or when.max() > orbit.times[-1]:
        span = [datetime.fromtimestamp(t, UTC).isoformat() for t in (orbit.times[0], orbit.times[-1])]
        asked = [datetime.fromtimestamp(t, UTC).isoformat() for t in (when.min(), when.max())]
        raise ValueError(f"{orbit.file_name}: state vectors cover {span[0]}..{span[1]}, not {asked[0]}..{asked[1]}")
    i = np.clip(np.searchsorted(orbit.times, when, side="right") - 1, 0, len(orbit.times) - 2)
    t0, t1 = orbit.times[i], orbit.times[i + 1]
    h = (t1 - t0)[:, None]
    s = ((when - t0) / (t1 - t0))[:, None]
    p0, p1 = orbit.positions[i], orbit.positions[i + 1]
    v0, v1 = orbit.velocities[i], orbit.velocities[i + 1]
    position = (
        (2 * s**3 - 3 * s**2 + 1) * p0
        + (s**3 - 2 * s**2 + s) * h * v0
        + (-2 * s**3 + 3 * s**2) * p1
        + (s**3 - s**2) * h * v1
    )
    velocity = (
        (6 * s**2 - 6 * s) / h * p0
        + (3 * s**2 - 4 * s + 1) * v0
        + (-6 * s**2 + 6 * s) / h * p1
        + (3 * s**2 - 2 * s) * v1
    )
    return position, velocity
