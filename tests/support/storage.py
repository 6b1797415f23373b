"""What the buckets hold."""

from __future__ import annotations

from typing import Any


def keys_under(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    """Keys under `prefix` in `bucket`, every page of the listing."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def staged_keys(s3: Any, bucket: str, prefix: str) -> set[str]:
    """The objects under `prefix` that a transfer finished (stored with their verified MD5 as metadata)."""
    return {
        key for key in keys_under(s3, bucket, prefix) if s3.head_object(Bucket=bucket, Key=key)["Metadata"].get("md5")
    }
