"""Small files in batches: many station downloads in one activity, each streamed, size- and MD5-verified, and
stored in one request; the plan that tells which assets go in batches.

A per-file activity costs more than a small file's transfer (an activity's own overhead, a checkpoint lookup and
removal, a multipart writer): for files of a few KiB the bookkeeping was the work. A batch keeps the guarantees
of the per-file path (`stations.stream_asset`): every file's size and MD5 checked against the station's before
it is stored (S3 also checks the bytes against the MD5), the verified MD5 as the object's metadata, and a retried
batch that does not transfer again what it had finished. A batch runs on the station's download queue and holds
one of its slots, with one download in flight at a time, so the slots still bound the downloads in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from typing import Any

import httpx
from temporalio import activity

from rs_ondemand.activities._heartbeat import Heartbeater
from rs_ondemand.activities._staged_objects import StagedObjects, UnverifiedObjectError
from rs_ondemand.activities.manifests import asset_transfers
from rs_ondemand.activities.stations import CHECKSUM_ATTEMPTS, StationClients, _verify
from rs_ondemand.activities.storage import MD5_METADATA, ObjectStore
from rs_ondemand.config import TransferSettings
from rs_ondemand.errors import ChecksumMismatchError, TransferError
from rs_ondemand.models.staging import AssetTransfer, BatchResult, TransferPlan, TransferPlanInput
from rs_ondemand.telemetry import tracer

CHECKS_IN_FLIGHT = 16
"""Objects checked at once when a retried batch looks for what it had finished."""


def group_small_files(
    transfers: list[AssetTransfer], settings: TransferSettings, parallel: int
) -> tuple[list[AssetTransfer], list[list[AssetTransfer]]]:
    """Split `transfers` into the ones done one by one and batches of small files: at most `batch_max_files`
    files and `batch_max_bytes` bytes each, and at least `parallel` batches when there are enough files (the
    workflow runs that many transfers at once). Order is kept, so an item's assets stay together."""
    small = [t for t in transfers if t.size is not None and t.size < settings.small_file_bytes]
    singles = [t for t in transfers if t.size is None or t.size >= settings.small_file_bytes]
    if not small:
        return singles, []
    count = max(math.ceil(len(small) / settings.batch_max_files), min(parallel, len(small)))
    per_batch = math.ceil(len(small) / count)
    batches: list[list[AssetTransfer]] = [[]]
    size = 0
    for transfer in small:
        if batches[-1] and (len(batches[-1]) >= per_batch or size + (transfer.size or 0) > settings.batch_max_bytes):
            batches.append([])
            size = 0
        batches[-1].append(transfer)
        size += transfer.size or 0
    return singles, batches


class BatchActivities:
    """Activities of the batched transfer of small files (station → S3) and of its planning."""

    def __init__(self, stations: StationClients, store: ObjectStore, settings: TransferSettings) -> None:
        self.stations = stations
        self.store = store
        self.settings = settings

    @activity.defn
    async def plan_transfers(self, request: TransferPlanInput) -> TransferPlan:
        """A window of transfers, the small files grouped in batches; none for a station with a requests-per-minute
        cap, which the Temporal server counts in activities started."""
        page = await asset_transfers(self.store, request.window)
        transfers = await self._not_staged(page.transfers) if request.skip_staged else page.transfers
        if self.stations[request.station].config.max_requests_per_minute:
            return TransferPlan(singles=transfers, batches=[], next_offset=page.next_offset)
        singles, batches = group_small_files(transfers, self.settings, request.parallel)
        return TransferPlan(singles=singles, batches=batches, next_offset=page.next_offset)

    async def _not_staged(self, transfers: list[AssetTransfer]) -> list[AssetTransfer]:
        """The transfers whose object S3 does not hold verified (the station's size and MD5)."""
        left: list[AssetTransfer] = []
        for bucket in dict.fromkeys(t.bucket for t in transfers):
            objects = StagedObjects(self.store, bucket)
            mine = [t for t in transfers if t.bucket == bucket]
            await objects.list([t.key for t in mine])

            async def missing(transfer: AssetTransfer, objects: StagedObjects = objects) -> bool:
                try:
                    await objects.verified(transfer.key, transfer.size, transfer.md5)
                except UnverifiedObjectError:
                    return True
                return False

            flags = await asyncio.gather(*(missing(t) for t in mine))
            left += [t for t, flag in zip(mine, flags, strict=True) if flag]
        return left

    @activity.defn
    async def transfer_batch(self, batch: list[AssetTransfer]) -> BatchResult:
        """Copy small files from their station to S3, one download at a time (the next file downloads while the
        previous one is stored), each verified against the station's size and MD5 before it is stored.

        A retry first looks in S3 for the files it had finished (an object of the file's size carrying the
        verified MD5: heartbeats are throttled and lost with a killed worker, the store is not) and transfers
        only the others."""
        sizes: dict[int, int] = {}
        if activity.info().attempt > 1:
            sizes = await self._already_staged(batch)
        resumed = len(sizes)
        if resumed:
            activity.logger.info("batch resumed: %d of %d files already staged", resumed, len(batch))
        with tracer.start_as_current_span("station.batch_to_s3", attributes={"rs.files": len(batch)}):
            async with Heartbeater(lambda: {"done": len(sizes), "of": len(batch), "resumed": resumed}) as beats:
                storing: asyncio.Task[None] | None = None
                try:
                    for index, transfer in enumerate(batch):
                        if index in sizes:
                            continue
                        body, md5 = await self._download(transfer)
                        beats.progress()
                        if storing is not None:
                            await storing  # at most one object on its way to S3 while the next file downloads
                        storing = asyncio.create_task(self._store(transfer, body, md5, index, sizes))
                    if storing is not None:
                        await storing
                except BaseException:
                    if storing is not None and not storing.done():
                        storing.cancel()
                        await asyncio.gather(storing, return_exceptions=True)
                    raise
        return BatchResult(sizes=[sizes[i] for i in range(len(batch))], resumed=resumed)

    async def _store(self, transfer: AssetTransfer, body: bytes, md5: str, index: int, sizes: dict[int, int]) -> None:
        await self.store.put_verified(transfer.bucket, transfer.key, body, md5)
        sizes[index] = len(body)

    async def _download(self, transfer: AssetTransfer) -> tuple[bytes, str]:
        """The file's bytes and MD5, checked against what the station announced."""
        station = self.stations.for_url(transfer.href)
        body = bytearray()
        limit = max(self.settings.small_file_bytes, transfer.size or 0)  # a station sending far more is stopped
        try:
            async with station.download(transfer.href) as response:
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise TransferError(f"{transfer.asset_name!r}: more bytes than the station announced")
        except httpx.HTTPError as err:
            raise TransferError(
                f"download of {transfer.asset_name!r} broke off after {len(body)} bytes: {err!r}"
            ) from err
        md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
        try:
            _verify(transfer, len(body), md5)
        except ChecksumMismatchError as err:
            # Corrupt bytes from the station: the batch is retried, and the mismatch is final after a few tries.
            err.non_retryable = activity.info().attempt >= CHECKSUM_ATTEMPTS
            raise
        return bytes(body), md5

    async def _already_staged(self, batch: list[AssetTransfer]) -> dict[int, int]:
        """Index → size of the files of `batch` already in S3 as a finished transfer leaves them."""
        checks = asyncio.Semaphore(CHECKS_IN_FLIGHT)

        async def head(transfer: AssetTransfer) -> dict[str, Any] | None:
            async with checks:
                return await self.store.head(transfer.bucket, transfer.key)

        heads = await asyncio.gather(*(head(t) for t in batch))
        return {
            index: head["size"]
            for index, (transfer, head) in enumerate(zip(batch, heads, strict=True))
            if head is not None and _finished(transfer, head)
        }


def _finished(transfer: AssetTransfer, head: dict[str, Any]) -> bool:
    """Whether an object is this transfer's, finished: it carries a verified MD5 (the station's, when it
    announced one) and the announced size."""
    md5 = head["metadata"].get(MD5_METADATA)
    return bool(md5) and (not transfer.md5 or md5 == transfer.md5) and transfer.size in (None, head["size"])
