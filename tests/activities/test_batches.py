"""Small files in batches: how the plan groups them, and the batch transfer against the real simulator and S3
(verification, nothing stored from a corrupt download, a retry that skips what it had finished); staged objects
read back by listing."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from rs_ondemand.activities._staged_objects import StagedObjects, UnverifiedObjectError
from rs_ondemand.activities.batches import BatchActivities, group_small_files
from rs_ondemand.activities.manifests import asset_transfers, store_search_page
from rs_ondemand.activities.stations import StationClients
from rs_ondemand.activities.storage import ObjectStore
from rs_ondemand.config import Settings, TransferSettings
from rs_ondemand.errors import ChecksumMismatchError
from rs_ondemand.models.staging import AssetTransfer, TransferPageInput
from tests.support.cadip_staging import new_session
from tests.support.stack import Simulator

KiB = 1024


def transfer(name: str, size: int | None) -> AssetTransfer:
    return AssetTransfer(item_id="item", asset_name=name, href="http://station/x", size=size, bucket="b", key=name)


def test_small_files_are_grouped_within_the_bounds_and_spread_over_the_transfers_at_once() -> None:
    settings = TransferSettings(small_file_bytes=10 * KiB, batch_max_files=4, batch_max_bytes=10 * KiB)
    files = [transfer(f"f{i}", 3 * KiB) for i in range(10)]
    singles, batches = group_small_files([*files, transfer("big", 10 * KiB), transfer("unknown", None)], settings, 1)
    assert [t.asset_name for t in singles] == ["big", "unknown"]  # not small, or not known to be
    assert [t.asset_name for batch in batches for t in batch] == [f"f{i}" for i in range(10)]  # order kept
    assert all(len(batch) <= 4 and sum(t.size or 0 for t in batch) <= 10 * KiB for batch in batches)

    # As many batches as transfers run at once when there are enough files.
    _, spread = group_small_files(files[:6], TransferSettings(small_file_bytes=10 * KiB), parallel=3)
    assert [len(batch) for batch in spread] == [2, 2, 2]
    assert group_small_files(files, TransferSettings(small_file_bytes=0), 4) == (files, [])  # batches off


@pytest_asyncio.fixture(loop_scope="session")
async def batches(settings: Settings) -> AsyncIterator[BatchActivities]:
    async with ObjectStore.open(settings.s3) as store, httpx.AsyncClient(timeout=30) as http:
        yield BatchActivities(StationClients(settings.station_registry(), http), store, settings.transfers)


async def session_transfers(settings: Settings, batches: BatchActivities, session: str) -> list[AssetTransfer]:
    """The transfers of a session's chunks into a collection of the test's, planned as staging does."""
    assert settings.cadip.url
    async with httpx.AsyncClient(timeout=30) as http:
        found = await http.post(f"{settings.cadip.url}/search", json={"ids": [session], "collections": ["cadip"]})
    page = await store_search_page(batches.store, f"test-batches-{uuid.uuid4()}", 0, found.json()["features"])
    refs = await batches.store.get_json(settings.s3.rs_work_bucket, page.key)
    window = TransferPageInput(owner_id="batches", collection=f"c-{uuid.uuid4().hex[:8]}", items=refs)
    return (await asset_transfers(batches.store, window)).transfers


def attempt(number: int) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=number)
    return env


async def test_a_batch_stores_every_file_verified_and_a_retry_skips_what_it_had_finished(
    settings: Settings, batches: BatchActivities, simulator: Simulator, s3: Any
) -> None:
    session = new_session(simulator, 4, chunk_size=3 * KiB)
    transfers = await session_transfers(settings, batches, session)
    simulator.reset_stats()
    result = await attempt(1).run(batches.transfer_batch, transfers[:2])
    assert result.sizes == [3 * KiB, 3 * KiB] and result.resumed == 0
    for t in transfers[:2]:
        head = s3.head_object(Bucket=t.bucket, Key=t.key)
        body = s3.get_object(Bucket=t.bucket, Key=t.key)["Body"].read()
        assert head["Metadata"]["md5"] == t.md5 == hashlib.md5(body).hexdigest()
    assert simulator.stats("cadip")["downloads"] == 2

    # The same batch grown by two files, as a retry after a crash: the two stored files are not downloaded again.
    again = await attempt(2).run(batches.transfer_batch, transfers)
    assert again.sizes == [3 * KiB] * 4 and again.resumed == 2
    assert simulator.stats("cadip")["downloads"] == 4


async def test_a_corrupt_download_is_not_stored_and_is_final_after_a_few_attempts(
    settings: Settings, batches: BatchActivities, simulator: Simulator, s3: Any
) -> None:
    session = new_session(simulator, 1, chunk_size=3 * KiB)
    (only,) = await session_transfers(settings, batches, session)
    simulator.faults(cadip={"corrupt_rate": 1.0})
    try:
        with pytest.raises(ChecksumMismatchError) as first:
            await attempt(1).run(batches.transfer_batch, [only])
        with pytest.raises(ChecksumMismatchError) as third:
            await attempt(3).run(batches.transfer_batch, [only])
    finally:
        simulator.clear_faults()
    assert not first.value.non_retryable and third.value.non_retryable
    assert s3.list_objects_v2(Bucket=only.bucket, Prefix=only.key)["KeyCount"] == 0


async def test_staged_objects_are_verified_from_one_listing_and_missing_ones_refused(
    settings: Settings, batches: BatchActivities, s3: Any
) -> None:
    bucket, prefix = settings.s3.rs_bucket, f"tests/{uuid.uuid4()}/"
    bodies = {f"{prefix}item-{i}/a.bin": str(i).encode() * 100 for i in range(3)}
    for key, body in bodies.items():  # no MD5 metadata: only S3's own MD5 (the ETag) can vouch for them
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    objects = StagedObjects(batches.store, bucket)
    await objects.list([*bodies, f"{prefix}item-9/a.bin"])
    for key, body in bodies.items():
        assert await objects.verified(key, len(body), hashlib.md5(body).hexdigest()) == (
            len(body),
            hashlib.md5(body).hexdigest(),
        )
    with pytest.raises(UnverifiedObjectError):
        await objects.verified(f"{prefix}item-0/a.bin", 300, "0" * 32)  # not the station's MD5
    with pytest.raises(UnverifiedObjectError):
        await objects.verified(f"{prefix}item-9/a.bin", None, "0" * 32)  # missing


async def test_staged_objects_listing_pages_on_past_objects_between_the_keys(
    settings: Settings, batches: BatchActivities, s3: Any
) -> None:
    """Pages start small (twice the keys to find) and the listing follows them over other objects in the range."""
    bucket, prefix = settings.s3.rs_bucket, f"tests/{uuid.uuid4()}/"
    keys = [f"{prefix}item-{i:02d}/a.bin" for i in range(12)]
    for key in keys:  # no MD5 metadata: only the listing (S3's ETag) can vouch for them, a HEAD cannot
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    wanted = [keys[0], keys[-1]]  # ten objects between them: more than the first page of four
    objects = StagedObjects(batches.store, bucket)
    await objects.list(wanted)
    for key in wanted:
        md5 = hashlib.md5(key.encode()).hexdigest()
        assert await objects.verified(key, len(key), md5) == (len(key), md5)


async def test_keys_a_whole_listing_passed_over_are_missing_without_a_head(
    settings: Settings, batches: BatchActivities, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Items to restage (another request's cleanup removed their objects): the plan learns from one listing that
    their files are missing. A key beyond what the listing could read is still asked by HEAD."""
    bucket, prefix = settings.s3.rs_bucket, f"tests/{uuid.uuid4()}/"
    present = f"{prefix}item-1/a.bin"
    s3.put_object(Bucket=bucket, Key=present, Body=b"here")
    heads: list[str] = []
    head = batches.store.head

    async def counted_head(bucket_name: str, key: str) -> Any:
        heads.append(key)
        return await head(bucket_name, key)

    monkeypatch.setattr(batches.store, "head", counted_head)
    objects = StagedObjects(batches.store, bucket)
    missing = [f"{prefix}item-{i}/a.bin" for i in (0, 2, 3)]
    await objects.list([*missing, present])
    for key in missing:
        with pytest.raises(UnverifiedObjectError, match="is not in S3"):
            await objects.verified(key, 4, "0" * 32)
    assert heads == []
    md5 = hashlib.md5(b"here").hexdigest()
    assert await objects.verified(present, 4, md5) == (4, md5)

    # A listing cut short by its budget (more objects in the range than it may read) proves nothing missing.
    monkeypatch.setattr("rs_ondemand.activities._staged_objects.LIST_PAGE_MAX", 1)
    crowded = [f"{prefix}crowded-{i}" for i in range(6)]
    for key in crowded[1:5]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    cut_short = StagedObjects(batches.store, bucket)
    await cut_short.list([crowded[0], crowded[5]])
    with pytest.raises(UnverifiedObjectError, match="is not verified in S3"):
        await cut_short.verified(crowded[5], 1, "0" * 32)
    assert heads == [crowded[5]]
