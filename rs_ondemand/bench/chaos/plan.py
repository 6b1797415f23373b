"""The soak's plan, drawn from its seed: which requests start when (and which are cancelled or sent twice), and
which faults strike when, for how long. The same seed and length give the same plan: a soak that found a
violation is replayed with `--seed` (the timing of the machine aside)."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

FaultKind = Literal[
    "worker_staging",
    "worker_processing",
    "temporal",
    "s3_freeze",
    "s3_restart",
    "catalog",
    "station_outage",
    "station_5xx",
    "station_reset",
    "station_truncate",
    "station_corrupt",
    "station_latency",
    "token_revocation",
    "eopf_kill",
]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
SERVICE_FAULTS: frozenset[FaultKind] = frozenset({"temporal", "s3_freeze", "s3_restart", "catalog"})
"""Faults of the stack's servers: one at a time (the launcher brings a service back only while the others
answer), each after the previous one cleared; every other fault overlaps freely with them and each other."""
STATION_FAULTS: dict[FaultKind, str] = {
    "station_outage": "outage",
    "station_5xx": "error_rate",
    "station_reset": "reset_rate",
    "station_truncate": "truncate_rate",
    "station_corrupt": "corrupt_rate",
    "station_latency": "latency_ms",
}
"""The simulator's `/_faults` key of each station fault."""
WEIGHTS: dict[FaultKind, float] = {
    "worker_staging": 12,
    "worker_processing": 7,
    "temporal": 4,
    "s3_freeze": 4,
    "s3_restart": 2,
    "catalog": 5,
    "station_outage": 8,
    "station_5xx": 10,
    "station_reset": 10,
    "station_truncate": 8,
    "station_corrupt": 6,
    "station_latency": 8,
    "token_revocation": 8,
    "eopf_kill": 8,
}
"""How often each kind is drawn after every kind had its turn: the servers' faults, long and disruptive (an S3
restart loses every object), rarer than the others."""
STATIONS = ("cadip", "prip", "auxip")
FAULTS_PER_MINUTE = 12.0

JobKind = Literal["cadip_small", "cadip_large", "prip", "auxip", "dpr", "dpr_chain", "scheduled"]
JOB_KINDS: tuple[JobKind, ...] = get_args(JobKind)
JOB_WEIGHTS: dict[JobKind, float] = {
    "cadip_small": 24,
    "cadip_large": 10,
    "prip": 16,
    "auxip": 12,
    "dpr": 14,
    "dpr_chain": 8,
    "scheduled": 10,
}
JOBS_PER_MINUTE = 7.0


@dataclass(frozen=True)
class Fault:
    """One fault: from `at_s` (seconds after the soak started; a server fault waits for the previous one) for
    `duration_s` (how long a station misbehaves, a server or worker stays down)."""

    index: int
    kind: FaultKind
    at_s: float
    duration_s: float
    station: str | None = None
    """The station of a station fault or a token revocation."""
    value: float = 0.0
    """The rate (0..1) or the latency (ms) of a station fault."""


@dataclass(frozen=True)
class Job:
    """One request of the workload (a DPR job stages its inputs first: requests of their own)."""

    index: int
    kind: JobKind
    at_s: float
    cancel_after_s: float | None = None
    """Cancelled this long after it started (None: left alone)."""
    duplicate: bool = False
    """Sent twice at once (two workflows, the same request)."""
    step_attempts: int = 10
    """The request's `options.step_attempts`: few attempts make it wait for the operator sooner."""

    @property
    def name(self) -> str:
        return f"{self.index:03d}-{self.kind.replace('_', '-')}"


@dataclass(frozen=True)
class SoakConfig:
    """The soak's shape; `seed` and this give its plan."""

    minutes: float = 10.0
    seed: int = 1
    fault_kinds: tuple[FaultKind, ...] = FAULT_KINDS
    job_kinds: tuple[JobKind, ...] = JOB_KINDS
    faults_per_minute: float = FAULTS_PER_MINUTE
    jobs_per_minute: float = JOBS_PER_MINUTE
    cancel_share: float = 0.15
    duplicate_share: float = 0.1
    warmup_s: float = 5.0
    """No fault in the first seconds: the first requests get going."""

    def __post_init__(self) -> None:
        if self.minutes <= 0:
            raise ValueError("minutes must be positive")
        if faults := set(self.fault_kinds) - set(FAULT_KINDS):
            raise ValueError(f"unknown fault kinds: {sorted(faults)}")
        if jobs := set(self.job_kinds) - set(JOB_KINDS):
            raise ValueError(f"unknown job kinds: {sorted(jobs)}")

    @property
    def seconds(self) -> float:
        return self.minutes * 60


@dataclass(frozen=True)
class SoakPlan:
    config: SoakConfig
    jobs: list[Job] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"jobs": [asdict(job) for job in self.jobs], "faults": [asdict(fault) for fault in self.faults]}


def _fault(rng: random.Random, index: int, kind: FaultKind, at_s: float) -> Fault:
    station = rng.choice(STATIONS) if kind in STATION_FAULTS or kind == "token_revocation" else None
    value = 0.0
    if kind in ("station_5xx",):
        value = round(rng.uniform(0.2, 0.5), 2)
    elif kind in ("station_reset", "station_truncate"):
        value = round(rng.uniform(0.1, 0.3), 2)
    elif kind == "station_corrupt":
        value = round(rng.uniform(0.05, 0.15), 2)
    elif kind == "station_latency":
        value = float(rng.randint(200, 1500))
    elif kind == "station_outage":
        value = 1.0
    if kind in ("worker_staging", "worker_processing"):
        duration = rng.uniform(0.0, 5.0)  # down before its restart
    elif kind in SERVICE_FAULTS:
        duration = rng.uniform(3.0, 15.0)
    elif kind in ("token_revocation", "eopf_kill"):
        duration = 0.0
    else:
        duration = rng.uniform(5.0, 25.0)
    return Fault(index, kind, round(at_s, 1), round(duration, 1), station, value)


def plan_soak(config: SoakConfig) -> SoakPlan:
    """The jobs and faults of a soak of `config.minutes` from `config.seed`: every fault kind at least once,
    then kinds drawn by weight; jobs start over the first 80 % of the soak, faults strike all along it."""
    rng = random.Random(f"rs-ondemand chaos {config.seed}")
    length = config.seconds
    kinds = list(config.fault_kinds)
    count = max(len(kinds), round(config.minutes * config.faults_per_minute))
    drawn = kinds + rng.choices(kinds, weights=[WEIGHTS[k] for k in kinds], k=count - len(kinds))
    times = sorted(rng.uniform(config.warmup_s, max(config.warmup_s, length - 5)) for _ in drawn)
    rng.shuffle(drawn)
    faults = [_fault(rng, index, kind, at) for index, (kind, at) in enumerate(zip(drawn, times, strict=True))]

    job_kinds = list(config.job_kinds)
    jobs_count = max(len(job_kinds), round(config.minutes * config.jobs_per_minute))
    job_drawn = job_kinds + rng.choices(
        job_kinds, weights=[JOB_WEIGHTS[k] for k in job_kinds], k=jobs_count - len(job_kinds)
    )
    rng.shuffle(job_drawn)
    job_times = sorted(rng.uniform(0, length * 0.8) for _ in job_drawn)
    jobs = []
    for index, (kind, at) in enumerate(zip(job_drawn, job_times, strict=True)):
        cancel = round(rng.uniform(2.0, 20.0), 1) if rng.random() < config.cancel_share else None
        duplicate = kind != "scheduled" and rng.random() < config.duplicate_share
        attempts = rng.choice((3, 10, 10))
        jobs.append(Job(index, kind, round(at, 1), cancel, duplicate, attempts))
    return SoakPlan(config, jobs, faults)
