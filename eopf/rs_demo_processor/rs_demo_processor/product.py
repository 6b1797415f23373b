"""The demo's output product: per-channel frame statistics and orbit state vectors, with `stac_discovery`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from eopf.product.conveniences import init_datatree
from eopf.product.datatree_cpm_accessor import CPMProductAccessor  # noqa: F401  (registers the `.cpm` accessor)
from xarray import Dataset, DataTree

from rs_demo_processor.cadu import ChunkSummary
from rs_demo_processor.orbit import OrbitFile

# Real S1 relative orbits repeat every 175 orbits; the offset is S1A's. Other units get the same rule: the
# demo only needs a stable number for the product name.
ORBITS_PER_CYCLE = 175
S1A_ORBIT_OFFSET = 73


@dataclass(frozen=True)
class Acquisition:
    """When and by what the session was acquired (from the request's parameters and the session id)."""

    satellite: str
    platform: str
    start: datetime
    end: datetime
    absolute_orbit: int | None


@dataclass(frozen=True)
class OrbitSamples:
    orbit: OrbitFile
    times: np.ndarray
    """Unix seconds."""
    positions: np.ndarray
    velocities: np.ndarray


def stac_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def relative_orbit(absolute_orbit: int) -> int:
    return (absolute_orbit - S1A_ORBIT_OFFSET) % ORBITS_PER_CYCLE + 1


def frames_dataset(summary: ChunkSummary, chunk_count: int) -> Dataset:
    channels = list(summary.channels)
    runs = list(summary.channels.values())
    return Dataset(
        {
            "frame_count": ("channel", np.array([r.frames for r in runs], dtype=np.int64)),
            "gap_count": ("channel", np.array([r.gaps for r in runs], dtype=np.int64)),
            "missing_frames": ("channel", np.array([r.missing_frames for r in runs], dtype=np.int64)),
            "first_counter": ("channel", np.array([r.first_counter for r in runs], dtype=np.int64)),
            "last_counter": ("channel", np.array([r.last_counter for r in runs], dtype=np.int64)),
        },
        coords={"channel": np.array(channels, dtype=np.int64)},
        attrs={
            "cadu_count": summary.frames,
            "sync_errors": summary.sync_errors,
            "chunk_files": chunk_count,
            "spacecraft_ids": summary.spacecraft_ids,
            # The same numbers as the variables, readable from the product's metadata alone (catalog, QC).
            "channel_summary": {
                str(vcid): {"frames": r.frames, "gaps": r.gaps, "missing_frames": r.missing_frames}
                for vcid, r in summary.channels.items()
            },
        },
    )


def orbit_dataset(samples: OrbitSamples) -> Dataset:
    times = (samples.times * 1e9).astype("datetime64[ns]")
    names = ("x", "y", "z")
    variables = {
        f"position_{axis}": ("time", samples.positions[:, i], {"units": "m"}) for i, axis in enumerate(names)
    } | {f"velocity_{axis}": ("time", samples.velocities[:, i], {"units": "m/s"}) for i, axis in enumerate(names)}
    return Dataset(
        variables,
        coords={"time": times},
        attrs={
            "orbit_file": samples.orbit.file_name,
            "orbit_file_type": samples.orbit.file_type,
            "validity_start": stac_time(samples.orbit.validity_start),
            "validity_stop": stac_time(samples.orbit.validity_stop),
            "reference_frame": "EARTH_FIXED",
        },
    )


def build_product(
    *,
    product_type: str,
    acquisition: Acquisition,
    timeliness_category: str,
    summary: ChunkSummary,
    chunk_count: int,
    orbit: OrbitSamples | None,
) -> DataTree:
    """An EOPF product whose `stac_discovery` is enough to publish it as a catalog item."""
    product = init_datatree(product_type)
    product.cpm.product_type = product_type
    properties: dict[str, Any] = {
        "datetime": stac_time(acquisition.start),
        "start_datetime": stac_time(acquisition.start),
        "end_datetime": stac_time(acquisition.end),
        "platform": acquisition.platform,
        "constellation": f"sentinel-{acquisition.satellite[1]}",
        "product:timeliness_category": timeliness_category,
        "processing:level": "L0",
        "processing:software": {"rs_demo_processor": "0.1.0"},
    }
    if acquisition.absolute_orbit is not None:
        properties["sat:absolute_orbit"] = acquisition.absolute_orbit
        properties["sat:relative_orbit"] = relative_orbit(acquisition.absolute_orbit)
    else:
        properties["sat:relative_orbit"] = 0  # the EOPF product name needs one
    stac = product.attrs["stac_discovery"]
    stac["properties"].update({key: value for key, value in properties.items() if value is not None})
    stac.update({"type": "Feature", "stac_version": "1.1.0", "geometry": None, "bbox": None})
    product["measurements/frames"] = frames_dataset(summary, chunk_count)
    if orbit is not None:
        product["conditions/orbit"] = orbit_dataset(orbit)
    # The id EOPF names the written product after (<type>_<start>_<duration>_<unit+rel. orbit>_<timeliness><crc>).
    stac["id"] = product.cpm.product_id()
    return product
