"""`rs-ondemand worker --role <role>` with one cleanup deliberately broken: a request's search manifests are left
in the work bucket when it ends. The chaos soak's test runs its workers so, to prove the soak sees a broken
cleanup (usage: python _leaky_worker.py <role>)."""

from __future__ import annotations

import sys

from temporalio import activity

from rs_ondemand import worker
from rs_ondemand.activities.storage import StorageActivities


@activity.defn(name="delete_request_manifests")
async def keep_manifests(self: StorageActivities, request_id: str) -> int:
    """Says it removed nothing, and removes nothing."""
    return 0


if __name__ == "__main__":
    StorageActivities.delete_request_manifests = keep_manifests  # type: ignore[method-assign]
    worker.main(sys.argv[1])  # type: ignore[arg-type]
