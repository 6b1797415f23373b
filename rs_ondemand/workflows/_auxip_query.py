"""The reusable AUXIP-query step of DPR units: search the AUXIP with a STAC query, stage what it finds (or not,
in a dry run), and answer with catalog items."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.activities.catalog import CatalogActivities
    from rs_ondemand.activities.storage import StorageActivities
    from rs_ondemand.models.common import FlowEnv
    from rs_ondemand.models.staging import (
        CatalogItemRef,
        QueryStagingOutcome,
        ReadCatalogItemsInput,
        StacQuery,
        StationSearchInput,
    )
    from rs_ondemand.workflows import _options
    from rs_ondemand.workflows._failures import is_cancellation
    from rs_ondemand.workflows._operator import OperatorControl
    from rs_ondemand.workflows._search_and_stage import SearchAndStage


async def stage_auxip_query(
    stager: SearchAndStage, query: StacQuery, env: FlowEnv, collection: str, timeout_seconds: int, key: str
) -> QueryStagingOutcome:
    """Search the AUXIP with a STAC query fragment, stage what it finds into `collection`, and return the
    *catalog* items (`s3://` hrefs), not the station's.

    `timeout_seconds` bounds the search and the staging together; 0 or a negative value means no limit
    (the original's -1). On timeout the staging children are cancelled (and clean up) and the outcome
    says so; `key` keeps the manifests of several calls within one workflow apart.
    """

    async def search_and_stage() -> QueryStagingOutcome:
        found = await stager.search(_auxip_search(query, key))
        if not found.items:
            return QueryStagingOutcome()
        staged = await stager.stage(found, env, collection, "auxip")
        items = await read_catalog_items(stager.control, env.owner_id, collection, staged.staged + staged.skipped)
        return QueryStagingOutcome(items=items)

    return await _within(timeout_seconds, search_and_stage())


async def search_auxip_query(
    stager: SearchAndStage, query: StacQuery, env: FlowEnv, collection: str, timeout_seconds: int, key: str
) -> QueryStagingOutcome:
    """`stage_auxip_query` without the staging (a dry run): the items it would stage, with their catalog
    hrefs for those the catalog already has (others have none)."""
    control = stager.control

    async def search_only() -> QueryStagingOutcome:
        found = await stager.search(_auxip_search(query, key))
        ids = [
            ref.item_id
            for page in await stager.pages(found)
            for ref in await workflow.execute_activity_method(
                StorageActivities.read_manifest_page, page, **control._with_attempts(_options.CATALOG)
            )
        ]
        known = await read_catalog_items(control, env.owner_id, collection, ids) if ids else []
        staged = {item.id: item for item in known}
        return QueryStagingOutcome(
            items=[staged.get(item_id) or CatalogItemRef(id=item_id, collection=collection) for item_id in ids]
        )

    return await _within(timeout_seconds, search_only())


async def read_catalog_items(
    control: OperatorControl, owner_id: str, collection: str, ids: list[str]
) -> list[CatalogItemRef]:
    """The catalog's items of `owner_id`'s `collection` among `ids` (with their `s3://` asset hrefs)."""
    return await workflow.execute_activity_method(
        CatalogActivities.read_catalog_items,
        ReadCatalogItemsInput(collection=collection, ids=ids, owner_id=owner_id),
        **control._with_attempts(_options.CATALOG),
    )


def _auxip_search(query: StacQuery, key: str) -> StationSearchInput:
    return StationSearchInput(
        station="auxip",
        request_id=f"{workflow.info().workflow_id}/{key}",
        filter=query.filter,
        sortby=query.sortby,
        max_items=query.limit,
    )


async def _within(timeout_seconds: int, body: Coroutine[Any, Any, QueryStagingOutcome]) -> QueryStagingOutcome:
    """`body`'s outcome, or a timed-out one after `timeout_seconds` (0 or less: no limit)."""
    if timeout_seconds <= 0:
        return await body
    # Not asyncio.wait_for: a cancelled activity surfaces as ActivityError(CancelledError), which it would
    # not recognise as its own cancellation. Wait with a deadline, then cancel and let the children clean up.
    task = asyncio.create_task(body)
    try:
        done, _ = await workflow.wait([task], timeout=timeout_seconds)
    except asyncio.CancelledError:
        # Waiting does not pass our cancel on: without this, the staging children would outlive the unit.
        task.cancel()
        await workflow.wait([task])
        raise
    if task in done:
        return task.result()
    task.cancel()
    try:
        await task
    except (Exception, asyncio.CancelledError) as err:
        if not is_cancellation(err):
            raise
    return QueryStagingOutcome(timed_out=True)
