"""The benches' S3 access: the worker's own client, an object's MD5 read back, and removing what a run wrote."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from rs_ondemand.activities.storage import ObjectStore
from rs_ondemand.bench._proc import MIB
from rs_ondemand.config import Settings


@asynccontextmanager
async def s3_client(settings: Settings) -> AsyncIterator[Any]:
    """The worker's own S3 client (same addressing and checksum settings), for the baseline and cleanup."""
    async with ObjectStore.open(settings.s3) as store:
        yield store.client


async def object_md5(s3: Any, bucket: str, key: str) -> str:
    """MD5 of an S3 object, streamed (never the whole object in memory)."""
    digest = hashlib.md5(usedforsecurity=False)
    response = await s3.get_object(Bucket=bucket, Key=key)
    body = response["Body"]
    try:
        async for chunk in body.iter_chunks(MIB):
            digest.update(chunk)
    finally:
        body.close()
    return digest.hexdigest()


async def delete_prefix(s3: Any, bucket: str, prefix: str) -> None:
    paginator = s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            await s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    uploads = await s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    for upload in uploads.get("Uploads", []):
        await s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
