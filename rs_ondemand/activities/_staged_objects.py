"""Staged objects read back before publication: which are in S3, of the station's size and MD5."""

from __future__ import annotations

import asyncio
from typing import Any

from rs_ondemand.activities.storage import MD5_METADATA, ObjectStore, translate_s3_errors

CHECKS_IN_FLIGHT = 16
"""HEAD requests in flight at once."""
LIST_PAGE_MAX = 1000
"""S3's largest listing page. A listing reads at most this many objects more than it has keys to find."""


class UnverifiedObjectError(Exception):
    """A staged object is missing, or its size or MD5 is not the station's."""


class StagedObjects:
    """What the store holds under some keys of one bucket, read at once.

    The keys of a publication batch usually lie side by side (the assets of an item, the products of a window
    sorted by time): one listing of the range they span gives each object's size and ETag, and S3's ETag of an
    object stored in one request is the MD5 of its bytes, computed by S3. An object the listing leaves unsettled
    (outside the pages read, stored in parts, an ETag that is no MD5, a station without checksum) is checked by
    HEAD, against the verified MD5 the transfer stored as its metadata. A key the listing passed over without
    finding is missing (S3 lists what it holds, consistently): no HEAD is sent to learn it again, which matters
    when many keys are missing (a restage's plan of items whose objects another request's cleanup removed).
    """

    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self.store = store
        self.bucket = bucket
        self._listed: dict[str, tuple[int, str]] = {}
        self._missing: set[str] = set()
        self._checks = asyncio.Semaphore(CHECKS_IN_FLIGHT)

    async def list(self, keys: list[str]) -> None:
        """List the range of `keys` (a few pages at most); what it finds answers `verified` without a HEAD."""
        if not keys:
            return
        first, last = min(keys), max(keys)
        shared = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), len(first))
        prefix = first[:shared]
        wanted = set(keys)
        # Pages start at twice the keys to find and double: a listed object costs CPU to parse (about a fiftieth
        # of a HEAD), and a page of 1000 for the 20 keys of a small batch parsed 980 for nothing.
        budget = len(wanted) + LIST_PAGE_MAX
        page_size = min(2 * len(wanted), LIST_PAGE_MAX)
        # StartAfter is exclusive: begin just before the first key (a proper prefix of it sorts before it).
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "StartAfter": first[:-1]}
        with translate_s3_errors(f"listing s3://{self.bucket}/{prefix}"):
            while budget > 0:
                page = await self.store.client.list_objects_v2(**request, MaxKeys=min(page_size, budget))
                contents: list[dict[str, Any]] = page.get("Contents", [])
                for entry in contents:
                    if entry["Key"] in wanted:
                        self._listed[entry["Key"]] = (entry["Size"], str(entry.get("ETag", "")).strip('"'))
                        self._missing.discard(entry["Key"])
                budget -= len(contents)
                if not contents or contents[-1]["Key"] >= last or not page.get("IsTruncated"):
                    self._missing.update(wanted - self._listed.keys())  # the whole range was read
                    break
                request["ContinuationToken"] = page["NextContinuationToken"]
                page_size = min(2 * page_size, LIST_PAGE_MAX)

    async def verified(self, key: str, size: int | None, md5: str | None) -> tuple[int, str]:
        """Size and MD5 of the object at `key`, which must be the station's (`size`, `md5` when it announced
        them); raises UnverifiedObjectError otherwise."""
        listed = self._listed.get(key)
        if listed is not None and md5 and listed[1] == md5 and size in (None, listed[0]):
            return listed[0], md5
        if key in self._missing:
            raise UnverifiedObjectError("is not in S3")
        async with self._checks:
            head = await self.store.head(self.bucket, key)
        stored = head and head["metadata"].get(MD5_METADATA)
        if not head or not stored:
            raise UnverifiedObjectError("is not verified in S3")
        if size not in (None, head["size"]) or (md5 and md5 != stored):
            raise UnverifiedObjectError("differs from the station's")
        return head["size"], stored
