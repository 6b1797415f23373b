"""A staged object that vanishes before its item is published (another request's cleanup removed the keys both
requests write, or S3 lost it): publication leaves the item out, `Staging` transfers again what is missing, and
the request completes with the item published whole, instead of failing or publishing an asset that is gone."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import Client

from rs_ondemand.config import Settings
from rs_ondemand.models.progress import Progress
from rs_ondemand.models.staging import CadipStagingResult
from rs_ondemand.names import PROGRESS_QUERY
from tests.support.cadip_staging import OWNER, assert_session_staged, new_session, result_of, start_staging
from tests.support.stack import Simulator
from tests.support.storage import staged_keys


async def test_an_asset_removed_before_publication_is_transferred_again(
    client: Client, task_queue: str, settings: Settings, simulator: Simulator, s3: Any, collection: str
) -> None:
    """Six chunks, the station slow: once the first chunk is stored, its object is deleted (as a cancelled
    request's cleanup would). The station serves that chunk once more, and only it; the session is published
    with every chunk in S3, verified; the request says why it transferred the chunk again."""
    chunks = 6
    session = new_session(simulator, chunks, chunk_size=32 * 1024)
    simulator.reset_stats()
    simulator.faults(cadip={"latency_ms": 500})
    try:
        handle = await start_staging(client, task_queue, session, collection, max_parallel_transfers=2)
        prefix = f"{OWNER}/{collection}/"
        async with asyncio.timeout(60):
            while not (stored := await asyncio.to_thread(staged_keys, s3, settings.s3.rs_bucket, prefix)):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        assert len(stored) < chunks, "the object must vanish before the item can be published"
        removed = sorted(stored)[0]
        s3.delete_object(Bucket=settings.s3.rs_bucket, Key=removed)
    finally:
        simulator.clear_faults()
    result: CadipStagingResult = await result_of(handle, within_s=120)
    assert (result.staging.items_staged, result.staging.assets_staged) == (1, chunks + 1)
    assert simulator.stats("cadip")["downloads"] == chunks + 1
    assert_session_staged(settings, s3, collection, session, handle.id)
    child = client.get_workflow_handle(f"{handle.id}/staging-{collection}-0000")
    progress = await child.query(PROGRESS_QUERY, result_type=Progress)
    assert any(f"transferring {session!r} again" in warning for warning in progress.warnings), progress.warnings
