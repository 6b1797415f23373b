"""The sample requests shared by `rs-ondemand demo`, the benches and the tests: a real CADIP session the station
simulator serves, and the demo DPR request on it (`samples/dpr-demo.json` for a given owner and collections)."""

from __future__ import annotations

from typing import Any

SAMPLE_SESSION = "S1A_20241114143038056552"
"""A real CADIP session (2 channels) that the station simulator serves."""
SAMPLE_START, SAMPLE_END = "2024-11-14T14:30:38.477Z", "2024-11-14T14:33:22.662Z"
"""Its acquisition (DownlinkStart/DownlinkStop): the processing window and the orbit ADFs' validity."""


def demo_dpr_request(
    owner: str,
    session: str,
    session_collection: str,
    *,
    output_collection: str = "s1-demo-l0",
    aux_collection: str = "s1-aux",
) -> dict[str, Any]:
    """`samples/dpr-demo.json` for this owner and session: the demo processor, the product into
    `output_collection`, orbit ADFs into `aux_collection`."""
    return {
        "env": {"owner_id": owner},
        "processor_name": "demo",
        "processor_version": "0.1.0",
        "dask_cluster_label": "local",
        "pipeline": "demo_full",
        "input_products": [{"CADU": [session, session_collection]}],
        "generated_product_to_collection_identifier": [{"DEMOL0": ["S01DEMOL0", output_collection]}],
        "auxiliary_product_to_collection_identifier": {"*": aux_collection},
        "start_datetime": SAMPLE_START,
        "end_datetime": SAMPLE_END,
        "satellite": "sentinel-1a",
    }
