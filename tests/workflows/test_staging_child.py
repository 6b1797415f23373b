"""`Staging` started directly, as its parents start it: one station search page staged into a collection, every
object in S3 with the station's size and MD5 and the item in the catalog; a page with more assets than one history
holds goes through part children; a second run skips what is staged."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus

from rs_ondemand.config import Settings
from tests.support.cadip_staging import assert_collection_staged, new_session, station_assets
from tests.support.stack import Simulator
from tests.support.staging_child import run_staging, session_page

KiB = 1024
OWNER = "staging-child"


async def test_a_page_is_staged_verified_and_published_and_a_second_run_skips_it(
    client: Client, task_queue: str, settings: Settings, simulator: Simulator, s3: Any, collection: str
) -> None:
    session = new_session(simulator, 3, chunk_size=64 * KiB)
    page = await session_page(settings, session)
    assert (page.items, page.assets, page.bytes) == (1, 3, 3 * 64 * KiB)

    _, result = await run_staging(client, task_queue, OWNER, collection, page)
    assert result.staged == [session] and result.skipped == []
    assert (result.items_staged, result.assets_staged, result.bytes_staged) == (1, 3, 3 * 64 * KiB)
    assert settings.cadip.url
    announced = station_assets(settings.cadip.url, "cadip", session)
    assert len(announced) == 3
    assert_collection_staged(settings, s3, collection, {session}, owner=OWNER, station={session: announced})

    _, again = await run_staging(client, task_queue, OWNER, collection, page)
    assert again.skipped == [session] and again.staged == []
    assert (again.items_staged, again.assets_staged, again.bytes_staged) == (0, 0, 0)


async def test_a_page_with_more_assets_than_a_history_holds_is_transferred_in_parts(
    client: Client, task_queue: str, settings: Settings, simulator: Simulator, s3: Any, collection: str
) -> None:
    session = new_session(simulator, 5, chunk_size=16 * KiB)
    page = await session_page(settings, session)

    workflow_id, result = await run_staging(client, task_queue, OWNER, collection, page, assets_per_child=2)
    assert result.staged == [session]
    assert (result.items_staged, result.assets_staged, result.bytes_staged) == (1, 5, 5 * 16 * KiB)
    for part in ("part-000", "part-001", "part-002"):  # assets 1-2, 3-4, 5
        described = await client.get_workflow_handle(f"{workflow_id}/{part}").describe()
        assert described.status == WorkflowExecutionStatus.COMPLETED, part
    assert settings.cadip.url
    announced = station_assets(settings.cadip.url, "cadip", session)
    assert_collection_staged(settings, s3, collection, {session}, owner=OWNER, station={session: announced})
