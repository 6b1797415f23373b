"""Helpers shared by the seeded data generators: reproducible generators, UUIDs and orbit numbers."""

import random
import uuid
from datetime import datetime

from rs_simulator.dates import utc

# Absolute orbit at 2024-01-01 and orbits per day, to give generated entities plausible orbit numbers.
_ORBIT_CLOCK = {"S1": (51914, 175 / 12), "S2": (36500, 143 / 10), "S3": (40900, 385 / 27)}


def rng_for(seed: int, *parts: object) -> random.Random:
    """A generator seeded by the simulator seed and a path of names: the same path gives the same data.

    String seeds are hashed with SHA-512 by `random`, so this is stable across processes.
    """
    return random.Random(":".join(map(str, (seed, *parts))))


def uuid_from(rng: random.Random) -> str:
    """A version-4 UUID drawn from a seeded generator (reproducible, unlike uuid4)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def absolute_orbit(satellite: str, when: datetime) -> int:
    """A plausible absolute orbit number of `satellite` at `when` (S1A fits the real 2024-11-14 session)."""
    base, per_day = _ORBIT_CLOCK.get(satellite[:2], (10000, 14.0))
    return max(1, int(base + (when - utc(2024, 1, 1)).total_seconds() / 86400 * per_day))
