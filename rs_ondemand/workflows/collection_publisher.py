"""`CollectionPublisher`: the one writer of staged items into a catalog collection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from rs_ondemand.activities.catalog import CatalogActivities
    from rs_ondemand.activities.storage import StorageActivities
    from rs_ondemand.activities.temporal import PUBLISHER_CLOSING
    from rs_ondemand.models.publication import (
        DiscardItemsResult,
        DiscardRequest,
        PublicationRequest,
        PublishItemsResult,
    )
    from rs_ondemand.names import COLLECTION_PUBLISHER, DISCARD_UPDATE, PUBLISH_UPDATE
    from rs_ondemand.workflows import _options

WRITES_PER_RUN = 400
"""Publications one run takes before it continues as new (about 12 events each: its history stays < 5,000)."""
IDLE = timedelta(minutes=1)
"""A publisher with nothing to do for this long ends; the next publication starts a new one."""


@workflow.defn(name=COLLECTION_PUBLISHER)
class CollectionPublisher:
    """Publishes verified items into one catalog collection, one write at a time, whoever asks.

    pgstac keeps a collection's items in a partition whose CHECK constraint bounds their datetimes; an insert
    whose items fall outside it rebuilds the constraint (and, for a new collection, creates the partition)
    inside the insert's transaction. Two inserts doing so at once break each other (`violates check constraint
    "_items_N_dt"`), whatever the collection's age. Every staging request hands its batches to this workflow,
    one per collection (its id is derived from the collection), which writes them one after the other: our
    writes into a collection never overlap, across requests and workers.

    Updates: `publish` (a `PublicationRequest`, started with the workflow if none runs), and `discard` (a
    `DiscardRequest`: a failed or cancelled request's cleanup; it keeps the items the catalog holds, so it must
    not run during a write that may be inserting one of them). It ends after `IDLE` without work, and continues
    as new after `WRITES_PER_RUN` writes; a run that is ending refuses new updates (the requester's activity
    sends them again, to the next run).
    """

    def __init__(self) -> None:
        self._write = asyncio.Lock()
        self._received = 0
        self._in_flight = 0
        self._writes = 0
        self._closing = False

    @workflow.run
    async def run(self, collection: str) -> None:
        while not self._full():
            await workflow.wait_condition(lambda: self._in_flight == 0 or self._full())
            if not await self._more_work_within(IDLE):
                break
        self._closing = True
        await workflow.wait_condition(lambda: self._in_flight == 0 and workflow.all_handlers_finished())
        if self._full():
            workflow.continue_as_new(collection)

    async def _more_work_within(self, idle: timedelta) -> bool:
        """Whether a publication arrives (or the run is full) within `idle`."""
        seen = self._received
        try:
            await workflow.wait_condition(lambda: self._received != seen or self._full(), timeout=idle)
        except TimeoutError:
            return self._in_flight > 0
        return True

    def _full(self) -> bool:
        return self._writes >= WRITES_PER_RUN or workflow.info().is_continue_as_new_suggested()

    @workflow.update(name=PUBLISH_UPDATE)
    async def publish(self, request: PublicationRequest) -> PublishItemsResult:
        result: PublishItemsResult = await self._in_turn(
            lambda: workflow.execute_activity_method(
                CatalogActivities.publish_staged_items,
                request.publish,
                **_options.with_attempts(_options.CATALOG, request.step_attempts),
            )
        )
        self._writes += 1
        return result

    @workflow.update(name=DISCARD_UPDATE)
    async def discard(self, request: DiscardRequest) -> DiscardItemsResult:
        return await self._in_turn(
            lambda: workflow.execute_activity_method(
                StorageActivities.discard_staged_items, request.discard, **_options.CLEANUP
            )
        )

    async def _in_turn[T](self, write: Callable[[], Awaitable[T]]) -> T:
        """`write()` once no other write of this publisher runs, counted as work received and in flight."""
        self._received += 1
        self._in_flight += 1
        try:
            async with self._write:
                return await write()
        finally:
            self._in_flight -= 1  # plain bookkeeping: safe even when the workflow is torn down

    @publish.validator
    def _accepting(self, request: PublicationRequest) -> None:
        self._refuse_when_closing()

    @discard.validator
    def _accepting_discard(self, request: DiscardRequest) -> None:
        self._refuse_when_closing()

    def _refuse_when_closing(self) -> None:
        if self._closing:
            raise ApplicationError("this publisher run is ending: send the request again", type=PUBLISHER_CLOSING)
