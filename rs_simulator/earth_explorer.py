"""Small deterministic Earth Explorer orbit files (`.EOF`) for the AUXIP products."""

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from xml.sax.saxutils import escape

from rs_simulator.seeding import absolute_orbit

EARTH_MU = 3.986004418e14  # m^3/s^2
EARTH_ROTATION = 7.2921159e-5  # rad/s
ORBIT_RADIUS = 7_071_000.0  # m, about 700 km altitude as Sentinel-1
INCLINATION = math.radians(98.18)
OSV_COUNT = 6


@dataclass(frozen=True)
class OrbitFile:
    """What the header of an orbit file says; the state vectors are derived from it and `phase_key`."""

    file_name: str
    file_type: str
    satellite: str
    validity_start: datetime
    validity_stop: datetime
    created: datetime
    system: str
    version: int
    phase_key: int


def _utc(value: datetime) -> str:
    return "UTC=" + value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def state_vector(when: datetime, start: datetime, phase: float, node: float) -> tuple[float, ...]:
    """Earth-fixed position (m) and velocity (m/s) on a circular sun-synchronous-like orbit."""
    mean_motion = math.sqrt(EARTH_MU / ORBIT_RADIUS**3)
    seconds = (when - start).total_seconds()
    u = phase + mean_motion * seconds  # argument of latitude
    raan = node - EARTH_ROTATION * seconds  # node longitude in the rotating frame
    cos_u, sin_u = math.cos(u), math.sin(u)
    cos_o, sin_o = math.cos(raan), math.sin(raan)
    cos_i, sin_i = math.cos(INCLINATION), math.sin(INCLINATION)
    x = ORBIT_RADIUS * (cos_o * cos_u - sin_o * sin_u * cos_i)
    y = ORBIT_RADIUS * (sin_o * cos_u + cos_o * sin_u * cos_i)
    z = ORBIT_RADIUS * sin_u * sin_i
    speed = ORBIT_RADIUS * mean_motion
    # Inertial velocity, then minus omega x r for the Earth-fixed frame.
    vx = speed * (-cos_o * sin_u - sin_o * cos_u * cos_i) + EARTH_ROTATION * y
    vy = speed * (-sin_o * sin_u + cos_o * cos_u * cos_i) - EARTH_ROTATION * x
    vz = speed * cos_u * sin_i
    return x, y, z, vx, vy, vz


def render(orbit: OrbitFile) -> bytes:
    """The `.EOF` document: a Fixed_Header naming the file and its validity, and a few OSVs."""
    rng = random.Random(orbit.phase_key)
    phase, node = rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)
    span = orbit.validity_stop - orbit.validity_start
    osvs = []
    for i in range(OSV_COUNT):
        when = orbit.validity_start + span * i / (OSV_COUNT - 1)
        when = when.replace(microsecond=(when.microsecond // 1000) * 1000)
        x, y, z, vx, vy, vz = state_vector(when, orbit.validity_start, phase, node)
        osvs.append(
            "      <OSV>\n"
            f"        <TAI>TAI={(when + timedelta(seconds=37)).strftime('%Y-%m-%dT%H:%M:%S.%f')}</TAI>\n"
            f"        <UTC>{_utc(when)}</UTC>\n"
            f"        <UT1>UT1={when.strftime('%Y-%m-%dT%H:%M:%S.%f')}</UT1>\n"
            f"        <Absolute_Orbit>+{absolute_orbit(orbit.satellite, when)}</Absolute_Orbit>\n"
            f'        <X unit="m">{x:.6f}</X>\n'
            f'        <Y unit="m">{y:.6f}</Y>\n'
            f'        <Z unit="m">{z:.6f}</Z>\n'
            f'        <VX unit="m/s">{vx:.6f}</VX>\n'
            f'        <VY unit="m/s">{vy:.6f}</VY>\n'
            f'        <VZ unit="m/s">{vz:.6f}</VZ>\n'
            "        <Quality>NOMINAL</Quality>\n"
            "      </OSV>\n"
        )
    mission = f"Sentinel-{orbit.satellite[1]}{orbit.satellite[2:3].strip('_')}"
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Earth_Explorer_File>\n"
        "  <Earth_Explorer_Header>\n"
        "    <Fixed_Header>\n"
        f"      <File_Name>{escape(orbit.file_name)}</File_Name>\n"
        f"      <File_Description>{escape(orbit.file_type)} orbit file</File_Description>\n"
        "      <Notes></Notes>\n"
        f"      <Mission>{mission}</Mission>\n"
        "      <File_Class>OPER</File_Class>\n"
        f"      <File_Type>{escape(orbit.file_type)}</File_Type>\n"
        "      <Validity_Period>\n"
        f"        <Validity_Start>{orbit.validity_start.strftime('UTC=%Y-%m-%dT%H:%M:%S')}</Validity_Start>\n"
        f"        <Validity_Stop>{orbit.validity_stop.strftime('UTC=%Y-%m-%dT%H:%M:%S')}</Validity_Stop>\n"
        "      </Validity_Period>\n"
        f"      <File_Version>{orbit.version:04d}</File_Version>\n"
        "      <Source>\n"
        f"        <System>{escape(orbit.system)}</System>\n"
        f"        <Creator>{escape(orbit.system)}</Creator>\n"
        "        <Creator_Version>rs-simulator</Creator_Version>\n"
        f"        <Creation_Date>{orbit.created.strftime('UTC=%Y-%m-%dT%H:%M:%S')}</Creation_Date>\n"
        "      </Source>\n"
        "    </Fixed_Header>\n"
        "    <Variable_Header>\n"
        "      <Ref_Frame>EARTH_FIXED</Ref_Frame>\n"
        "      <Time_Reference>UTC</Time_Reference>\n"
        "    </Variable_Header>\n"
        "  </Earth_Explorer_Header>\n"
        '  <Data_Block type="xml">\n'
        f'    <List_of_OSVs count="{OSV_COUNT}">\n'
        f"{''.join(osvs)}"
        "    </List_of_OSVs>\n"
        "  </Data_Block>\n"
        "</Earth_Explorer_File>\n"
    )
    return document.encode()
