"""Catalog ↔ S3 consistency of our data bucket (`rs-ondemand check storage`).

Every `s3://<data bucket>/…` asset of every catalog item is an object, or a folder of objects (a Zarr product),
of the size and MD5 the item records (`file:size`, `file:checksum`; the MD5 we verified is in the object's
`md5` metadata). Every object of the bucket belongs to such an asset; one that does not is *unreferenced*: left
by a re-run, a crash between upload and publication, or a cleanup that failed. Multipart uploads and transfer
checkpoints (in the work bucket) left by killed workers are *leftovers*.

`fix` removes unreferenced objects and leftovers, and nothing else: never an object an item references, never
anything younger than the grace period or under the folder of a request still running (its objects are
published at its end).
"""

from __future__ import annotations

import asyncio
import bisect
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rs_ondemand.activities.catalog_client import CatalogClient
from rs_ondemand.activities.catalog_publish import S3_HREF
from rs_ondemand.activities.storage import MD5_METADATA, ObjectStore, checkpoint_key, checkpoint_prefix
from rs_ondemand.checksums import md5_from_checksum

if TYPE_CHECKING:
    from temporalio.client import Client

HEAD_CONCURRENCY = 16


@dataclass(frozen=True)
class AssetProblem:
    collection: str
    item: str
    asset: str
    key: str
    problem: str
    """`missing`, or what differs (`size 10 != 12`, `md5 … != …`)."""


@dataclass
class StorageReport:
    bucket: str
    objects: int = 0
    items: int = 0
    """Catalog items with an asset in (the checked part of) the bucket."""
    unreferenced: list[str] = field(default_factory=list)
    """Keys no item references, old enough and outside running requests: what `fix` removes."""
    kept: list[str] = field(default_factory=list)
    """Unreferenced keys `fix` leaves alone: younger than the grace period, or under a running request."""
    assets: list[AssetProblem] = field(default_factory=list)
    """Item assets whose objects are missing or differ."""
    uploads: list[dict[str, str]] = field(default_factory=list)
    """Leftover multipart uploads (`bucket`, `key`, `upload_id`)."""
    checkpoints: list[str] = field(default_factory=list)
    """Leftover transfer checkpoints (keys in the work bucket)."""
    removed: dict[str, int] = field(default_factory=dict)

    @property
    def consistent(self) -> bool:
        return not (self.unreferenced or self.assets or self.uploads or self.checkpoints)

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"consistent": self.consistent}


async def running_prefixes(client: Client) -> set[str]:
    """The folders of the data bucket running requests write to: `<owner>/<collection>/` for staging, the whole
    `<owner>/` for a DPR request (its output collections are not a search attribute)."""
    from rs_ondemand.search_attributes import RS_COLLECTION, RS_OWNER

    prefixes = set()
    async for execution in client.list_workflows("ExecutionStatus = 'Running'"):
        attributes = execution.typed_search_attributes
        owner, collection = attributes.get(RS_OWNER), attributes.get(RS_COLLECTION)
        if owner:
            prefixes.add(f"{owner}/{collection}/" if collection else f"{owner}/")
    return prefixes


async def check_storage(
    store: ObjectStore, catalog: CatalogClient, in_use: set[str], grace: timedelta, prefix: str = ""
) -> StorageReport:
    """Compare the catalog with the data bucket (the part under `prefix`, e.g. `<owner>/`); `in_use` are the
    prefixes of running requests."""
    bucket, work = store.settings.rs_bucket, store.settings.rs_work_bucket
    cutoff = datetime.now(UTC) - grace
    report = StorageReport(bucket=bucket)
    objects = {obj["key"]: obj async for obj in store.list_objects(bucket, prefix)}
    report.objects = len(objects)
    keys = sorted(objects)

    def has_objects_under(folder: str) -> bool:
        index = bisect.bisect_left(keys, folder)
        return index < len(keys) and keys[index].startswith(folder)

    referenced: set[str] = set()
    folders: list[str] = []
    checks = asyncio.Semaphore(HEAD_CONCURRENCY)
    pending = []

    def look_at(collection: str, item_id: str, name: str, asset: dict[str, Any]) -> bool:
        """Account for one asset; False when it is not in (this part of) our bucket: not ours to check."""
        match = S3_HREF.fullmatch(str(asset.get("href", "")))
        if match is None or match["bucket"] != bucket or not match["key"].startswith(prefix):
            return False
        key = match["key"]
        where = (collection, item_id, name, key)
        if key in objects:
            referenced.add(key)
            pending.append(_compare(store, bucket, asset, where, checks))
        elif has_objects_under(folder := key.rstrip("/") + "/"):
            folders.append(folder)  # a folder asset (a Zarr product): every object under it
        else:
            report.assets.append(AssetProblem(*where, problem="missing"))
        return True

    for collection in await catalog.collection_ids():
        for item in await catalog.all_items(collection):
            assets = (item.get("assets") or {}).items()
            counted = [look_at(collection, str(item.get("id")), name, asset) for name, asset in assets]
            report.items += any(counted)
    report.assets += [problem for problem in await asyncio.gather(*pending) if problem is not None]

    def protected(key: str, when: datetime) -> bool:
        return when > cutoff or any(key.startswith(prefix) for prefix in in_use)

    folders.sort()

    def in_a_folder(key: str) -> bool:
        index = bisect.bisect_right(folders, key) - 1  # the last folder sorting before the key holds it, if any
        return index >= 0 and key.startswith(folders[index])

    for key in keys:
        obj = objects[key]
        if key in referenced or in_a_folder(key):
            continue
        (report.kept if protected(key, obj["last_modified"]) else report.unreferenced).append(key)
    for upload_bucket in (bucket, work):
        async for upload in store.list_uploads(upload_bucket, prefix if upload_bucket == bucket else ""):
            if not protected(upload["key"] if upload_bucket == bucket else "", upload["initiated"]):
                report.uploads.append({"bucket": upload_bucket} | {k: upload[k] for k in ("key", "upload_id")})
    # Checkpoints of uploads into the data bucket: `checkpoint_key(bucket, key)` is the folder then key + suffix.
    transfers, suffix = (
        checkpoint_prefix(bucket, ""),
        checkpoint_key(bucket, "").removeprefix(checkpoint_prefix(bucket, "")),
    )
    async for obj in store.list_objects(work, transfers + prefix):
        target = obj["key"].removeprefix(transfers).removesuffix(suffix)
        if obj["key"].endswith(suffix) and not protected(target, obj["last_modified"]):
            report.checkpoints.append(obj["key"])
    return report


async def _compare(
    store: ObjectStore, bucket: str, asset: dict[str, Any], where: tuple[str, str, str, str], checks: asyncio.Semaphore
) -> AssetProblem | None:
    async with checks:
        head = await store.head(bucket, where[3])
    if head is None:
        return AssetProblem(*where, problem="missing")
    size, md5 = asset.get("file:size"), md5_from_checksum(asset.get("file:checksum"))
    if isinstance(size, int) and head["size"] != size:
        return AssetProblem(*where, problem=f"size {head['size']} != {size} recorded")
    stored = head["metadata"].get(MD5_METADATA)
    if md5 and stored != md5:
        return AssetProblem(*where, problem=f"md5 {stored or 'unknown'} != {md5} recorded")
    return None


async def fix_storage(store: ObjectStore, report: StorageReport) -> StorageReport:
    """Remove what `report` found unreferenced or left over (and only that)."""
    work = store.settings.rs_work_bucket
    report.removed = {
        "objects": await store.delete_keys(report.bucket, report.unreferenced),
        "checkpoints": await store.delete_keys(work, report.checkpoints),
        "uploads": 0,
    }
    for upload in report.uploads:
        await store.abort_upload(upload["bucket"], upload["key"], upload["upload_id"])
        report.removed["uploads"] += 1
    return report
