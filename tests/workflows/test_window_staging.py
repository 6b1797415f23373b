"""OnDemandPripStaging and OnDemandAuxipStaging end to end, including large requests and station limits."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from temporalio.client import Client, WorkflowHandle

from rs_ondemand.activities._stac import open_stac_api
from rs_ondemand.config import Settings
from rs_ondemand.cql2_filters import valcover_filter
from rs_ondemand.models.progress import Progress, State
from rs_ondemand.models.staging import AuxipStagingInput, PripStagingInput, WindowStagingResult
from rs_ondemand.names import PROGRESS_QUERY
from rs_ondemand.worker import activities, running_workers
from rs_ondemand.workflows.window_staging import OnDemandAuxipStaging, OnDemandPripStaging
from tests.support.catalog import catalog_ids
from tests.support.prip import OWNER, WINDOW, add_prip_products, prip_request
from tests.support.stack import Simulator


async def start_prip(client: Client, queue: str, request: PripStagingInput) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        OnDemandPripStaging.run, request, id=f"test-prip-{uuid.uuid4()}", task_queue=queue
    )


async def transfers_in_flight(client: Client, handle: WorkflowHandle[Any, Any]) -> int:
    """The most asset transfers a request had scheduled and not ended at once, all its `Staging` children
    together (read from their histories: what the workflows asked for, whatever the station's slots). A batch of
    small files streams them one at a time: it is one transfer."""
    changes: list[tuple[datetime, int]] = []
    async for child in client.list_workflows(f'ParentWorkflowId = "{handle.id}"'):
        history = await client.get_workflow_handle(child.id).fetch_history()
        transfers = set()
        for event in history.events:
            attributes = event.activity_task_scheduled_event_attributes
            if event.HasField("activity_task_scheduled_event_attributes"):
                if attributes.activity_type.name in ("stream_asset", "transfer_batch"):
                    transfers.add(event.event_id)
                    changes.append((event.event_time.ToDatetime(), +1))
                continue
            for ended in ("completed", "failed", "timed_out", "canceled"):
                field = f"activity_task_{ended}_event_attributes"
                if event.HasField(field) and getattr(event, field).scheduled_event_id in transfers:
                    changes.append((event.event_time.ToDatetime(), -1))
    most = running = 0
    for _, change in sorted(changes):  # at one instant, ends (-1) sort before starts
        running += change
        most = max(most, running)
    return most


async def test_prip_staging_follows_every_result_page_within_its_transfer_limit(
    client: Client, task_queue: str, settings: Settings, simulator: Simulator, s3: Any, collection: str
) -> None:
    """More products than one search page (100): every one is staged, not the original's first 10; the pages
    staged at once share the request's `max_parallel_transfers`."""
    product_type = add_prip_products(simulator, 230)
    request = prip_request(product_type, collection, *WINDOW, max_parallel_transfers=5)
    handle = await start_prip(client, task_queue, request)
    result: WindowStagingResult = await handle.result()
    assert 2 <= await transfers_in_flight(client, handle) <= 5  # three pages at once: 2 + 2 + 1 transfers

    assert result.items_found == 230 and result.staging.items_staged == 230
    assert result.filter == valcover_filter(*WINDOW, product_type)
    staged = catalog_ids(settings, collection)
    assert len(staged) == 230
    keys = s3.list_objects_v2(Bucket=settings.s3.rs_bucket, Prefix=f"{OWNER}/{collection}/", MaxKeys=1000)
    assert keys["KeyCount"] == 230
    progress = await handle.query(PROGRESS_QUERY, result_type=Progress)
    assert progress.state == State.COMPLETED and progress.items_done == progress.items_total == 230


async def test_prip_staging_with_no_match_succeeds_with_nothing_staged(
    client: Client, task_queue: str, settings: Settings, collection: str
) -> None:
    handle = await start_prip(client, task_queue, prip_request("NO_SUCH_TYPE", collection, *WINDOW))
    result: WindowStagingResult = await handle.result()
    assert result.items_found == 0 and result.staging.items_staged == 0
    response = await asyncio.to_thread(httpx.get, f"{settings.catalog.url}/collections/{collection}", timeout=30)
    assert response.status_code == 404


async def test_auxip_staging_stages_the_files_valid_over_the_window(
    client: Client, task_queue: str, settings: Settings, s3: Any, collection: str
) -> None:
    """The seeded orbit files: exactly those the station's own search returns for the ValCover filter."""
    start, end = datetime(2024, 11, 14, 14, 30, tzinfo=UTC), datetime(2024, 11, 14, 14, 35, tzinfo=UTC)
    assert settings.auxip.url
    with open_stac_api(settings.auxip.url, 60) as station:
        expected = {
            item["id"]
            for item in station.search(filter=valcover_filter(start, end, "AUX_RESORB"), limit=100).items_as_dicts()
        }
    assert expected, "the simulator should hold AUX_RESORB files for the sample session's time"

    request = AuxipStagingInput.for_window(OWNER, "AUX_RESORB", collection, start, end)
    handle = await client.start_workflow(
        OnDemandAuxipStaging.run, request, id=f"test-auxip-{uuid.uuid4()}", task_queue=task_queue
    )
    result: WindowStagingResult = await handle.result()
    assert set(result.staging.staged) == expected == catalog_ids(settings, collection)
    for item_id in expected:
        listed = s3.list_objects_v2(Bucket=settings.s3.rs_bucket, Prefix=f"{OWNER}/{collection}/{item_id}/")
        assert listed["KeyCount"] == 1


async def history_stats(handle: WorkflowHandle[Any, Any]) -> tuple[int, int]:
    """Number of events and the largest event (bytes) of a workflow's history."""
    history = await handle.fetch_history()
    return len(history.events), max(event.ByteSize() for event in history.events)


async def test_a_large_request_keeps_every_history_small(
    client: Client, settings: Settings, simulator: Simulator, collection: str
) -> None:
    """1,200 tiny products (more ids than a result lists): every history (parent and children) stays under 10,000
    events and no event carries more than 256 KB."""
    product_type = add_prip_products(simulator, 1200, size=200)
    # Tiny files: throughput is set by how many downloads run at once, so this worker allows more.
    wide = settings.with_station("prip", max_concurrent_downloads=16)
    queue = f"tq-wide-{uuid.uuid4()}"
    async with activities(wide) as fns, running_workers(client, wide, fns, task_queue=queue):
        request = prip_request(product_type, collection, *WINDOW, max_parallel_transfers=16)
        handle = await start_prip(client, queue, request)
        result: WindowStagingResult = await handle.result()
    assert result.staging.items_staged == 1200 and len(result.staging.staged) == 1000  # ids listed are capped

    histories = [await history_stats(handle)]
    children = client.list_workflows(f'ParentWorkflowId = "{handle.id}"')
    histories += [await history_stats(client.get_workflow_handle(child.id)) async for child in children]
    print("history sizes (events, largest event bytes):", sorted(histories, reverse=True)[:3])
    assert len(histories) == 1 + 12  # the parent and one child per page of 100
    assert max(events for events, _ in histories) < 10_000
    assert max(size for _, size in histories) < 256 * 1024


async def test_a_station_download_limit_holds_across_requests(
    client: Client, settings: Settings, simulator: Simulator
) -> None:
    """Three concurrent requests, a PRIP limit of 2: the station never sees more than 2 downloads at once."""
    limited = settings.with_station("prip", max_concurrent_downloads=2)
    queue = f"tq-limited-{uuid.uuid4()}"
    # Larger than a part, so each download stays open while its first part uploads and downloads overlap.
    product_types = [add_prip_products(simulator, 4, size=12 * 1024 * 1024) for _ in range(3)]
    simulator.reset_stats()
    async with activities(limited) as fns, running_workers(client, limited, fns, task_queue=queue):
        handles = [
            await start_prip(client, queue, prip_request(pt, f"test-{uuid.uuid4().hex[:10]}", *WINDOW))
            for pt in product_types
        ]
        results = await asyncio.gather(*(h.result() for h in handles))
    assert [r.staging.items_staged for r in results] == [4, 4, 4]
    stats = simulator.stats("prip")
    assert stats["downloads"] >= 12
    assert stats["max_downloads_in_flight"] == 2
