"""The demo's EOPF processing unit: a staged CADIP session's chunk files + an orbit ADF -> a small L0 product."""

from __future__ import annotations

import logging
import posixpath
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import dask
import fsspec
import numpy as np
from eopf.computing.abstract import EOProcessingUnit
from eopf.computing.types import AuxiliaryDataFile, MappingAuxiliary, MappingDataType
from xarray import DataTree

import rs_demo_processor.cadu_reader  # noqa: F401  (registers the `cadu` reader engine the payload names)
from rs_demo_processor.cadu import ChunkSummary, combine, from_table, summarize
from rs_demo_processor.orbit import OrbitFile, interpolate, parse_orbit_file
from rs_demo_processor.product import Acquisition, OrbitSamples, build_product
from rs_demo_processor.session import parse_session_id

log = logging.getLogger(__name__)

INPUT_NAME = "CADU"
ADF_NAME = "ORBIT"
OUTPUT_NAME = "DEMOL0"


def _summarize_table(table: np.ndarray) -> ChunkSummary:
    """Summarize a chunk file's header table (runs on a Dask worker)."""
    return summarize(from_table(table))


def _parse_time(value: str | datetime) -> datetime:
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _chunk_order(tree: DataTree) -> tuple[int, int, str]:
    attrs = tree.attrs
    return int(attrs.get("channel", 0)), int(attrs.get("block", 0)), str(attrs.get("file_name", ""))


def read_orbit_files(adf: AuxiliaryDataFile) -> list[OrbitFile]:
    """The orbit file(s) of the ADF: its path is one `.EOF` file, or a folder whose `.EOF` files are all used."""
    options = dict((adf.adf_params or {}).get("storage_options", {}))
    fs, path = fsspec.core.url_to_fs(adf.path, **options)
    paths = [path]
    if fs.isdir(path):
        paths = sorted(p for p in fs.ls(path, detail=False) if p.upper().endswith(".EOF"))
        if not paths:
            raise ValueError(f"ADF {adf.name}: no .EOF file in {adf.path}")
    return [parse_orbit_file(fs.cat_file(p)) for p in paths]


def covering_orbit(orbits: list[OrbitFile], start: datetime, end: datetime) -> OrbitFile:
    """The first orbit file whose state vectors span [start, end]."""
    for orbit in orbits:
        if len(orbit.times) >= 2 and orbit.times[0] <= start.timestamp() and end.timestamp() <= orbit.times[-1]:
            return orbit
    names = ", ".join(o.file_name for o in orbits)
    raise ValueError(f"no orbit file covers {start.isoformat()}..{end.isoformat()} (read: {names})")


class DemoL0Unit(EOProcessingUnit):
    """Decodes every CADU of a CADIP session and writes per-channel frame statistics with orbit state vectors.

    Inputs: `CADU`, the session's chunk files (the payload declares the session folder with engine `cadu`, so
    EOPF hands over one lazily decoded DataTree per file). ADF: `ORBIT`, an Earth Explorer orbit file. Output:
    `DEMOL0`, a product of type `S0<mission>DEMOL0`.

    Parameters (the payload step's `parameters`): `start_datetime` / `end_datetime` of the session (default:
    its id's start, for both), `sampling_seconds` of the orbit samples (10), `timeliness_category` ("NRT"),
    `product_type` (derived from the satellite), `hold_seconds` (0): extra time the unit stays busy, to watch a
    demo's progress or cancel it while the unit runs.
    """

    PROCESSOR_NAME = "Demo"
    PROCESSOR_VERSION = "0.1.0"
    PROCESSOR_LEVEL = "L0"
    # No EOPF processing-contract model file ships with the demo: its mandatory inputs are declared below.
    PROCESSOR_CONTRACT = False

    # EOPF checks these before the run (and in a dry run): without them the inputs would count as optional.
    @classmethod
    def get_mandatory_input_list(cls, mode: str | None = None, **kwargs: Any) -> list[str]:
        return [INPUT_NAME]

    @classmethod
    def get_mandatory_adf_list(cls, mode: str | None = None, **kwargs: Any) -> list[str]:
        return [ADF_NAME]

    def run(
        self, inputs: MappingDataType, adfs: MappingAuxiliary | None = None, mode: str | None = None, **kwargs: Any
    ) -> MappingDataType:
        chunks = inputs.get(INPUT_NAME)
        if chunks is None:
            raise ValueError(f"input {INPUT_NAME!r} is missing: {sorted(inputs)} were given")
        trees = sorted([chunks] if isinstance(chunks, DataTree) else list(chunks), key=_chunk_order)  # type: ignore[arg-type]
        if not trees:
            raise ValueError(f"input {INPUT_NAME!r} has no chunk file")
        if (hold := float(kwargs.get("hold_seconds", 0))) > 0:
            log.info("Holding for %.0f s (hold_seconds)", hold)
            time.sleep(hold)
        # One decode + summary task per chunk file: the decoding happens on the Dask workers.
        tasks = [dask.delayed(_summarize_table, pure=True)(t["frames"]["headers"].data) for t in trees]
        summaries = dask.compute(*tasks)
        summary = combine(summaries)
        log.info("Decoded %d CADUs of %d chunk files: %s", summary.frames, len(trees), summary.channels)

        acquisition = self._acquisition(trees, kwargs)
        adf = (adfs or {}).get(ADF_NAME)
        if adf is None:
            raise ValueError(f"ADF {ADF_NAME!r} is missing: {sorted(adfs or {})} were given")
        orbit = self._orbit_samples(adf, acquisition, float(kwargs.get("sampling_seconds", 10.0)))
        if acquisition.absolute_orbit is None:
            nearest = int(np.argmin(np.abs(orbit.orbit.times - acquisition.start.timestamp())))
            acquisition = replace(acquisition, absolute_orbit=int(orbit.orbit.absolute_orbits[nearest]))
        product_type = kwargs.get("product_type") or f"S{int(acquisition.satellite[1]):02d}DEMOL0"
        product = build_product(
            product_type=product_type,
            acquisition=acquisition,
            timeliness_category=str(kwargs.get("timeliness_category", "NRT")),
            summary=summary,
            chunk_count=len(trees),
            orbit=orbit,
        )
        return {OUTPUT_NAME: product}

    @staticmethod
    def _acquisition(trees: list[DataTree], parameters: dict[str, Any]) -> Acquisition:
        session_ids = {str(t.attrs["session_id"]) for t in trees if "session_id" in t.attrs}
        if len(session_ids) > 1:
            raise ValueError(f"chunk files of several sessions were given: {sorted(session_ids)}")
        session = parse_session_id(session_ids.pop()) if session_ids else None
        satellite = str(parameters.get("satellite") or (session.satellite if session else ""))
        if not satellite:
            names = [posixpath.basename(str(t.attrs.get("file_name"))) for t in trees[:3]]
            raise ValueError(f"cannot tell the satellite: no session id in {names} and no 'satellite' parameter")
        start = _parse_time(parameters["start_datetime"]) if parameters.get("start_datetime") else None
        start = start or (session.start if session else None)
        if start is None:
            raise ValueError("cannot tell the acquisition start: give the 'start_datetime' parameter")
        end = _parse_time(parameters["end_datetime"]) if parameters.get("end_datetime") else start
        if end < start:
            raise ValueError(f"end_datetime {end.isoformat()} is before start_datetime {start.isoformat()}")
        platform = session.platform if session else f"sentinel-{satellite[1]}{satellite[2:].lower()}"
        return Acquisition(satellite, platform, start, end, session.downlink_orbit if session else None)

    @staticmethod
    def _orbit_samples(adf: AuxiliaryDataFile, acquisition: Acquisition, step: float) -> OrbitSamples:
        orbit = covering_orbit(read_orbit_files(adf), acquisition.start, acquisition.end)
        duration = (acquisition.end - acquisition.start).total_seconds()
        offsets = np.append(np.arange(0.0, duration, max(step, 1e-3)), duration)
        times = np.unique(np.array([(acquisition.start + timedelta(seconds=o)).timestamp() for o in offsets]))
        positions, velocities = interpolate(orbit, times)
        return OrbitSamples(orbit, times, positions, velocities)
