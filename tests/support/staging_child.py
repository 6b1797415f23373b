"""The `Staging` child started on its own, as a parent starts it: a station search page kept in the work bucket
(as the search activity keeps it), then `Staging` on that page."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from temporalio.client import Client

from rs_ondemand.activities.manifests import store_search_page
from rs_ondemand.activities.storage import ObjectStore
from rs_ondemand.config import Settings
from rs_ondemand.models.staging import PageRef, StagingInput, StagingResult
from rs_ondemand.names import STAGING


async def session_page(settings: Settings, session: str) -> PageRef:
    """The station's item of CADIP session `session`, kept as one search page of a request of the test's own."""
    assert settings.cadip.url
    async with httpx.AsyncClient(timeout=30) as http:
        found = await http.post(f"{settings.cadip.url}/search", json={"ids": [session], "collections": ["cadip"]})
    found.raise_for_status()
    features: list[dict[str, Any]] = found.json()["features"]
    assert [feature["id"] for feature in features] == [session]
    async with ObjectStore.open(settings.s3) as store:
        return await store_search_page(store, f"test-page-{uuid.uuid4()}", 0, features)


async def run_staging(
    client: Client, task_queue: str, owner: str, collection: str, page: PageRef, **fields: Any
) -> tuple[str, StagingResult]:
    """`Staging` of `page` into `collection`, started directly; its workflow id and result."""
    request = StagingInput.model_validate(
        {"env": {"owner_id": owner}, "catalog_collection_identifier": collection, "station": "cadip", "page": page}
        | fields
    )
    workflow_id = f"test-staging-{uuid.uuid4()}"
    result = await client.execute_workflow(
        STAGING, request, id=workflow_id, task_queue=task_queue, result_type=StagingResult
    )
    return workflow_id, result
