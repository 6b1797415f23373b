"""S3 side effects: request manifests, streamed multipart uploads, verification reads and cleanup.

Longer than our ~400-line guide on purpose: one module per outside system, and every S3 call goes through
`ObjectStore` here (one client, one error mapping)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aioboto3
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import parse_timestamp
from pydantic import BaseModel
from temporalio import activity

from rs_ondemand.activities import _resumable_md5 as resumable_md5
from rs_ondemand.config import S3Settings
from rs_ondemand.errors import ConfigurationError, InvalidInputError, StorageError
from rs_ondemand.models.publication import DiscardItemsInput, DiscardItemsResult
from rs_ondemand.models.staging import ItemRef, PageListSlice, PageRef

if TYPE_CHECKING:
    from rs_ondemand.activities.catalog_client import CatalogClient

MD5_METADATA = "md5"
"""User metadata key holding the verified hex MD5 of a staged object (set before the object exists)."""


def staged_key(owner_id: str, collection: str, item_id: str, asset_name: str) -> str:
    """Where a staged asset lives in the bucket: `<owner>/<collection>/<item>/<asset>`
    (docs/interface.md#storage-layout)."""
    return f"{owner_id}/{collection}/{item_id}/{asset_name}"


def item_prefix(owner_id: str, collection: str, item_id: str) -> str:
    return f"{owner_id}/{collection}/{item_id}/"


def manifest_prefix(request_id: str) -> str:
    return f"requests/{request_id}/"


def checkpoint_prefix(bucket: str, prefix: str) -> str:
    """Where resumable upload states of objects under s3://bucket/prefix live in the work bucket."""
    return f"transfers/{bucket}/{prefix}"


def checkpoint_key(bucket: str, key: str) -> str:
    return checkpoint_prefix(bucket, key) + ".checkpoint.json"


def split_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/key` as (bucket, key)."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not bucket or not key:
        raise InvalidInputError(f"{url!r} is not an s3://bucket/key URL")
    return bucket, key


def _timestamp(value: str) -> datetime:
    """An S3 timestamp as a datetime: the ISO 8601 of listings by the standard library, other forms (HTTP dates
    of headers, epochs) by botocore's parser. botocore's own tries dateutil first, which cost more CPU than the
    rest of a listing's parsing (a page of 1000 objects has 1000 of them)."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        parsed = parse_timestamp(value)
    return parsed


def _s3_session() -> aioboto3.Session:
    session = AioSession()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
    return aioboto3.Session(botocore_session=session)


def _not_found(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey")


@contextmanager
def translate_s3_errors(what: str) -> Iterator[None]:
    """Turn botocore failures into project errors in one place."""
    try:
        yield
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            raise ConfigurationError(f"{what}: bucket does not exist ({err})") from err
        raise StorageError(f"{what}: {err}") from err
    except BotoCoreError as err:
        raise StorageError(f"{what}: {err}") from err


class TransferCheckpoint(BaseModel):
    """Durable progress of one upload: resume from `offset` with these parts and this MD5 state."""

    upload_id: str
    parts: list[dict[str, Any]]
    offset: int
    md5_state: str


class MultipartWriter:
    """Uploads a stream part by part, hashing it, and checkpoints after every part so a retry can resume.

    Parts go up one at a time: at most one part is held in memory, and at most one part has to be read
    again from the station after a crash (the checkpoint is written as soon as a part is stored, unlike
    heartbeats, which are throttled). An object smaller than one part is written with a single PUT; nothing
    is visible in the bucket before `complete()`.
    """

    def __init__(
        self, store: ObjectStore, bucket: str, key: str, metadata: dict[str, str], checkpoint_key: str | None
    ) -> None:
        self._store = store
        self._client = store.client
        self.bucket, self.key = bucket, key
        self._part_size = store.settings.rs_s3_part_size
        self._metadata = metadata
        self._checkpoint_key = checkpoint_key if resumable_md5.available() else None
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self.offset = 0
        """Bytes stored in completed parts."""
        self._md5: Any = resumable_md5.ResumableMD5() if self._checkpoint_key else hashlib.md5()

    async def resume(self) -> int:
        """Continue a previous attempt's upload if its checkpoint and upload still exist; returns the byte
        offset to read the source from (0 when starting afresh)."""
        if not self._checkpoint_key:
            return 0
        try:
            saved = await self._store.get_json(self._store.settings.rs_work_bucket, self._checkpoint_key)
        except StorageError:
            return 0
        checkpoint = TransferCheckpoint.model_validate(saved)
        try:
            listed = await self._client.list_parts(Bucket=self.bucket, Key=self.key, UploadId=checkpoint.upload_id)
        except (ClientError, BotoCoreError):  # aborted meanwhile, or the store lost it: start again
            return 0
        stored = {part["PartNumber"]: part["ETag"] for part in listed.get("Parts", [])}
        if any(stored.get(part["PartNumber"]) != part["ETag"] for part in checkpoint.parts):
            return 0
        self._upload_id, self._parts, self.offset = checkpoint.upload_id, checkpoint.parts, checkpoint.offset
        self._md5 = resumable_md5.ResumableMD5.from_state(checkpoint.md5_state)
        return self.offset

    async def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= self._part_size:
            part = bytes(memoryview(self._buffer)[: self._part_size])  # one copy, not two
            del self._buffer[: self._part_size]
            await self._store_part(part)

    async def _store_part(self, data: bytes) -> None:
        with translate_s3_errors(f"uploading s3://{self.bucket}/{self.key}"):
            if self._upload_id is None:
                created = await self._client.create_multipart_upload(
                    Bucket=self.bucket, Key=self.key, Metadata=self._metadata
                )
                self._upload_id = created["UploadId"]
            number = len(self._parts) + 1
            # Hash in a thread (both MD5s release the GIL) while the part uploads: the loop stays free.
            _, response = await asyncio.gather(
                asyncio.to_thread(self._md5.update, data),
                self._client.upload_part(
                    Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=data
                ),
            )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
        self.offset += len(data)
        if self._checkpoint_key:
            checkpoint = TransferCheckpoint(
                upload_id=self._upload_id, parts=self._parts, offset=self.offset, md5_state=self._md5.state()
            )
            await self._store.put_json(
                self._store.settings.rs_work_bucket, self._checkpoint_key, checkpoint.model_dump()
            )

    def hexdigest(self) -> str:
        """MD5 of every byte written so far (resumed parts included)."""
        md5 = resumable_md5.ResumableMD5.from_state(self._md5.state()) if self._checkpoint_key else self._md5.copy()
        md5.update(bytes(self._buffer))
        return str(md5.hexdigest())

    async def complete(self) -> None:
        with translate_s3_errors(f"completing s3://{self.bucket}/{self.key}"):
            if self._upload_id is None:
                await self._settled(
                    self._client.put_object(
                        Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer), Metadata=self._metadata
                    )
                )
            else:
                if self._buffer:
                    await self._store_part(bytes(self._buffer))
                    self._buffer.clear()
                await self._settled(
                    self._client.complete_multipart_upload(
                        Bucket=self.bucket,
                        Key=self.key,
                        UploadId=self._upload_id,
                        MultipartUpload={"Parts": self._parts},
                    )
                )
                self._upload_id = None
        await self._forget_checkpoint()

    async def _settled(self, request: Awaitable[Any]) -> None:
        """Await the request that creates the object; if cancelled meanwhile, let the server finish, then remove
        the object. A completion already sent is carried out by S3 even if we stop listening: without this, a
        cancel during `complete` could leave an object that the request's cleanup (run at once) did not see."""
        task = asyncio.ensure_future(request)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await task
                await self._client.delete_object(Bucket=self.bucket, Key=self.key)
            self._upload_id = None
            raise

    async def abort(self) -> None:
        """Forget everything written so far (best effort: a lost abort is caught by the request cleanup)."""
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            try:
                await self._client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
            except (ClientError, BotoCoreError) as err:
                activity.logger.warning("could not abort upload of %s: %s", self.key, err)
        await self._forget_checkpoint()

    async def _forget_checkpoint(self) -> None:
        """Best effort: on the abort path a raise here would replace the error being handled, and a checkpoint
        left behind is harmless (a later attempt finds its upload gone and starts afresh)."""
        if self._checkpoint_key:
            try:
                await self._store.delete(self._store.settings.rs_work_bucket, self._checkpoint_key)
            except (StorageError, ConfigurationError) as err:
                activity.logger.warning("could not delete the checkpoint of %s: %s", self.key, err)


class ObjectStore:
    """The one seam to S3: every call the project makes to the object store goes through here."""

    def __init__(self, client: Any, settings: S3Settings) -> None:
        self.client = client
        self.settings = settings

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: S3Settings) -> AsyncIterator[ObjectStore]:
        config = AioConfig(
            s3={"addressing_style": "path"},
            # MinIO-era servers and moto reject the CRC trailers newer botocore adds by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=64,
            retries={"max_attempts": 4, "mode": "standard"},
        )
        secret = settings.aws_secret_access_key
        async with _s3_session().client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.aws_default_region,
            aws_access_key_id=settings.aws_access_key_id.get_secret_value() if settings.aws_access_key_id else None,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=config,
        ) as client:
            yield cls(client, settings)

    def writer(
        self, bucket: str, key: str, metadata: dict[str, str], checkpoint_key: str | None = None
    ) -> MultipartWriter:
        """A writer for one object; with `checkpoint_key` (in the work bucket) it can resume after a crash."""
        return MultipartWriter(self, bucket, key, metadata, checkpoint_key)

    async def put_verified(self, bucket: str, key: str, body: bytes, md5: str) -> None:
        """Store a small object in one request with its verified MD5 as metadata; S3 checks the bytes it received
        against the MD5 (Content-MD5) and refuses them if they differ."""
        with translate_s3_errors(f"writing s3://{bucket}/{key}"):
            await self.client.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                Metadata={MD5_METADATA: md5},
                ContentMD5=base64.b64encode(bytes.fromhex(md5)).decode(),
            )

    async def put_json(self, bucket: str, key: str, document: Any) -> None:
        with translate_s3_errors(f"writing s3://{bucket}/{key}"):
            body = json.dumps(document, separators=(",", ":")).encode()
            await self.client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")

    async def get_json(self, bucket: str, key: str) -> Any:
        return json.loads(await self.get_bytes(bucket, key))

    async def get_json_if_exists(self, bucket: str, key: str) -> Any | None:
        """The JSON document at `key`, or None when there is no such object."""
        data = await self.get_bytes(bucket, key, missing_ok=True)
        return None if data is None else json.loads(data)

    async def put_text(self, bucket: str, key: str, text: str, content_type: str = "text/plain") -> None:
        with translate_s3_errors(f"writing s3://{bucket}/{key}"):
            await self.client.put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType=content_type)

    async def get_text(self, bucket: str, key: str) -> str:
        data: bytes = await self.get_bytes(bucket, key)
        return data.decode("utf-8")

    async def get_bytes(self, bucket: str, key: str, *, missing_ok: bool = False) -> Any:
        """The object's content; with `missing_ok`, None when there is no such object."""
        try:
            with translate_s3_errors(f"reading s3://{bucket}/{key}"):
                response = await self.client.get_object(Bucket=bucket, Key=key)
                async with response["Body"] as body:
                    return await body.read()
        except StorageError as err:
            if missing_ok and isinstance(err.__cause__, ClientError) and _not_found(err.__cause__):
                return None
            raise

    async def delete(self, bucket: str, key: str) -> None:
        """Delete one object (deleting an object that is not there is no error in S3)."""
        with translate_s3_errors(f"deleting s3://{bucket}/{key}"):
            await self.client.delete_object(Bucket=bucket, Key=key)

    async def head(self, bucket: str, key: str) -> dict[str, Any] | None:
        """Size and user metadata of an object, or None if it does not exist."""
        try:
            with translate_s3_errors(f"checking s3://{bucket}/{key}"):
                response = await self.client.head_object(Bucket=bucket, Key=key)
        except StorageError as err:
            if isinstance(err.__cause__, ClientError) and _not_found(err.__cause__):
                return None
            raise
        return {"size": response["ContentLength"], "metadata": response.get("Metadata", {})}

    async def set_metadata(self, bucket: str, key: str, metadata: dict[str, str]) -> None:
        """Replace an object's user metadata (a server-side copy onto itself)."""
        with translate_s3_errors(f"tagging s3://{bucket}/{key}"):
            await self.client.copy_object(
                Bucket=bucket,
                Key=key,
                CopySource={"Bucket": bucket, "Key": key},
                Metadata=metadata,
                MetadataDirective="REPLACE",
            )

    async def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Delete every object under `prefix`; returns how many were deleted."""
        deleted = 0
        with translate_s3_errors(f"deleting s3://{bucket}/{prefix}"):
            paginator = self.client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if keys:
                    await self.client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                    deleted += len(keys)
        return deleted

    async def _listed(self, operation: str, field: str, bucket: str, prefix: str) -> AsyncIterator[dict[str, Any]]:
        """The `field` entries of every page of a listing `operation` under `prefix`."""
        with translate_s3_errors(f"listing s3://{bucket}/{prefix} ({operation})"):
            async for page in self.client.get_paginator(operation).paginate(Bucket=bucket, Prefix=prefix):
                for entry in page.get(field, []):
                    yield entry

    async def list_objects(self, bucket: str, prefix: str = "") -> AsyncIterator[dict[str, Any]]:
        """Every object under `prefix`: `key`, `size`, `last_modified` (a tz-aware datetime)."""
        async for obj in self._listed("list_objects_v2", "Contents", bucket, prefix):
            yield {"key": obj["Key"], "size": obj["Size"], "last_modified": obj["LastModified"]}

    async def list_uploads(self, bucket: str, prefix: str = "") -> AsyncIterator[dict[str, Any]]:
        """Every multipart upload in progress under `prefix`: `key`, `upload_id`, `initiated`."""
        async for upload in self._listed("list_multipart_uploads", "Uploads", bucket, prefix):
            yield {"key": upload["Key"], "upload_id": upload["UploadId"], "initiated": upload["Initiated"]}

    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        with translate_s3_errors(f"aborting the upload of s3://{bucket}/{key}"):
            await self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

    async def delete_keys(self, bucket: str, keys: list[str]) -> int:
        """Delete these objects (1000 per request, S3's limit); returns how many were asked for."""
        with translate_s3_errors(f"deleting {len(keys)} objects of s3://{bucket}"):
            for start in range(0, len(keys), 1000):
                batch = [{"Key": key} for key in keys[start : start + 1000]]
                await self.client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)

    async def abort_uploads(self, bucket: str, prefix: str) -> int:
        """Abort the multipart uploads left under `prefix` (e.g. by a worker that was killed)."""
        aborted = 0
        with translate_s3_errors(f"aborting uploads under s3://{bucket}/{prefix}"):
            paginator = self.client.get_paginator("list_multipart_uploads")
            async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    await self.client.abort_multipart_upload(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
        return aborted


class StorageActivities:
    """Activities on S3 (the catalog is only read, by `discard_staged_items`)."""

    def __init__(self, store: ObjectStore, catalog: CatalogClient | None = None) -> None:
        self.store = store
        self.catalog = catalog

    @activity.defn
    async def read_manifest_page(self, page: PageRef) -> list[ItemRef]:
        """The item references of one search page (at most a page size of them: small enough for history)."""
        refs = await self.store.get_json(self.store.settings.rs_work_bucket, page.key)
        return [ItemRef.model_validate(ref) for ref in refs]

    @activity.defn
    async def read_page_refs(self, part: PageListSlice) -> list[PageRef]:
        """Some of the page references a search kept in the work bucket (`manifests.store_page_list`): a run's
        worth of `StagingPages`."""
        pages = await self.store.get_json(self.store.settings.rs_work_bucket, part.page_list.key)
        if len(pages) != part.page_list.pages:
            raise InvalidInputError(f"{part.page_list.key} lists {len(pages)} pages, not {part.page_list.pages}")
        return [PageRef.model_validate(page) for page in pages[part.start : part.start + part.count]]

    @activity.defn
    async def discard_staged_items(self, request: DiscardItemsInput) -> DiscardItemsResult:
        """Delete the objects and abort the uploads of items a request wrote but did not publish, except those
        the catalog holds: another request staged the same item into the same collection and published it (its
        objects are the same keys), and the catalog must not point at deleted objects."""
        bucket = self.store.settings.rs_bucket
        deleted = aborted = 0
        published = set()
        if self.catalog is not None:
            found = await self.catalog.items(request.collection, request.item_ids, owner=request.owner_id)
            published = {str(item.get("id")) for item in found}
        for item_id in request.item_ids:
            if item_id in published:
                activity.logger.info("kept %s: the catalog holds it (another request published it)", item_id)
                continue
            prefix = item_prefix(request.owner_id, request.collection, item_id)
            aborted += await self.store.abort_uploads(bucket, prefix)
            deleted += await self.store.delete_prefix(bucket, prefix)
            await self.store.delete_prefix(self.store.settings.rs_work_bucket, checkpoint_prefix(bucket, prefix))
        activity.logger.info("discarded %d objects and %d uploads of %s", deleted, aborted, request.item_ids)
        return DiscardItemsResult(objects_deleted=deleted, uploads_aborted=aborted)

    @activity.defn
    async def delete_request_manifests(self, request_id: str) -> int:
        """Remove a finished request's manifests from the work bucket."""
        return await self.store.delete_prefix(self.store.settings.rs_work_bucket, manifest_prefix(request_id))
