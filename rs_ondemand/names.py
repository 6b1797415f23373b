"""Public names (docs/interface.md), defined once: workflow types, signals, query (the task queue is in config)."""

import re
from typing import Final, Literal

CADIP_STAGING: Final = "OnDemandCadipStaging"
PRIP_STAGING: Final = "OnDemandPripStaging"
AUXIP_STAGING: Final = "OnDemandAuxipStaging"
DPR_PROCESSING: Final = "DprProcessing"
PROCESSING_UNIT: Final = "ProcessingUnit"
STAGING: Final = "Staging"
SCHEDULED_STAGING: Final = "ScheduledStaging"
"""One run of a staging schedule (`rs-ondemand schedule`): the PRIP/AUXIP products published in its window."""

RETRY_SIGNAL: Final = "retry"
CANCEL_SIGNAL: Final = "cancel"
PROGRESS_QUERY: Final = "progress"

UNIT_PROGRESS_SIGNAL: Final = "unit_progress"
"""Internal: a `ProcessingUnit` child reports its state and the ADF alternatives it tried to its parent."""
STAGING_PROGRESS_SIGNAL: Final = "staging_progress"
"""Internal: a `Staging` child reports its counts to its parent."""

STAGING_PAGES: Final = "StagingPages"
"""Internal: stages the result pages of a large request, continuing as new every few pages."""

COLLECTION_PUBLISHER: Final = "CollectionPublisher"
"""Internal: the one writer of staged items into a catalog collection (one workflow per collection)."""
PUBLISH_UPDATE: Final = "publish"
"""Internal: the update a `CollectionPublisher` takes a batch of verified items with."""
DISCARD_UPDATE: Final = "discard"
"""Internal: the update a `CollectionPublisher` removes what a request wrote for items it did not publish with."""


def collection_publisher_id(collection: str) -> str:
    """Workflow id of the publisher of `collection`: one id per collection makes it the only writer."""
    return f"catalog-publisher/{collection}"


WorkerRole = Literal["staging", "processing", "all"]
"""`rs-ondemand worker --role`: which task queues a worker process polls (see rs_ondemand/worker.py)."""


def safe_segment(name: str) -> str:
    """`name` as one path or id segment: anything but letters, digits and `._-` (a workflow id's `/`, say)
    becomes `_`."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def download_task_queue(task_queue: str, station: str) -> str:
    """The queue of one station's downloads: its worker slots are the station's concurrency limit."""
    return f"{task_queue}-downloads-{station}"


def processor_task_queue(task_queue: str) -> str:
    """The queue of EOPF runs: few slots (each run drives a Dask cluster), apart from the I/O-bound activities."""
    return f"{task_queue}-processor"
