"""What the buckets hold."""

from __future__ import annotations

from typing import Any


def keys_under(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    """Keys under `prefix` in `bucket`, every page of the listing."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]
