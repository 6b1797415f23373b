"""The side `rs-ondemand bench staging` measures ours against: the bench's one-chunk session on the station
simulator, and the least a copy of it can do (a token, a streaming GET, sequential multipart parts to S3, no
checksum); and the MD5 floor, the CPU any verified copy must spend."""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import httpx

from rs_ondemand.bench import BenchError
from rs_ondemand.bench._proc import MIB
from rs_ondemand.checksums import md5_from_checksum
from rs_ondemand.config import Settings

CADIP_COLLECTION = "cadip"
WARMUP_TIMEOUT_S = 900.0
"""The first search of a session makes the simulator hash its chunk (about 2.7 s per GiB)."""


@dataclass(frozen=True)
class StationFile:
    session_id: str
    name: str
    size: int
    md5: str
    download_url: str


def md5_floor_cpu_s(size: int) -> float:
    """CPU seconds this process spends on the MD5 of `size` bytes, fed in 1 MiB chunks as a transfer does: the
    least any verified copy costs, measured on the same machine under the same load as the rounds."""
    chunk = bytes(range(256)) * (MIB // 256)
    digest = hashlib.md5(usedforsecurity=False)
    began = time.process_time()
    for _ in range(size // MIB):
        digest.update(chunk)
    digest.update(chunk[: size % MIB])
    return time.process_time() - began


async def station_token(http: httpx.AsyncClient, settings: Settings) -> str:
    cadip = settings.cadip
    if not (cadip.token_url and cadip.username and cadip.password):
        raise BenchError("no CADIP OAuth2 settings (CADIP_TOKEN_URL, CADIP_USERNAME, CADIP_PASSWORD)")
    response = await http.post(
        cadip.token_url,
        data={
            "grant_type": "password",
            "client_id": cadip.client_id or "",
            "client_secret": cadip.client_secret.get_secret_value() if cadip.client_secret else "",
            "username": cadip.username,
            "password": cadip.password.get_secret_value(),
        },
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


async def prepare_session(
    http: httpx.AsyncClient, settings: Settings, simulator_url: str, size: int, session_id: str
) -> StationFile:
    """Add the one-chunk session to the simulator at `simulator_url`, warm its checksum up, and describe its file."""
    added = await http.post(
        f"{simulator_url.rstrip('/')}/_catalogue/sessions",
        json={
            "session_id": session_id,
            "satellite": "S1A",
            "channels": 1,
            "chunks_per_channel": 1,
            "chunk_size": size,
        },
    )
    if added.status_code not in (200, 201):
        raise BenchError(f"the simulator refused the bench session ({added.status_code}): {added.text[:300]}")
    if added.json().get("total_size") != size:
        raise BenchError(f"the simulator's session {session_id} is not {size} bytes: {added.json()}")
    # Warm-up: the station's STAC search hashes the chunk once (the workflow's search would otherwise pay it).
    if not settings.cadip.url:
        raise BenchError("CADIP_URL is not configured")
    search = await http.post(
        f"{settings.cadip.url.rstrip('/')}/search",
        json={"ids": [session_id], "collections": [CADIP_COLLECTION]},
        timeout=WARMUP_TIMEOUT_S,
    )
    search.raise_for_status()
    features = search.json().get("features", [])
    if len(features) != 1 or len(features[0].get("assets", {})) != 1:
        raise BenchError(f"the station's STAC search for {session_id} did not return one item with one asset")
    (asset,) = features[0]["assets"].values()
    md5 = md5_from_checksum(asset.get("file:checksum"))
    if not md5:
        raise BenchError(f"the station gives no MD5 for {session_id}")
    # The download the baseline makes, found the OData way (as a plain client would).
    token = await station_token(http, settings)
    odata = (settings.cadip.odata_url or "").rstrip("/")
    files = await http.get(
        f"{odata}/Files",
        params={"$filter": f"SessionId eq '{session_id}'", "$select": "Id,Name,Size"},
        headers={"Authorization": f"Bearer {token}"},
    )
    files.raise_for_status()
    (entry,) = files.json()["value"]
    if entry["Size"] != size:
        raise BenchError(f"the station lists {entry['Name']} with {entry['Size']} bytes, expected {size}")
    return StationFile(
        session_id=session_id,
        name=entry["Name"],
        size=size,
        md5=md5,
        download_url=f"{odata}/Files({entry['Id']})/$value",
    )


async def baseline_copy(
    http: httpx.AsyncClient, s3: Any, settings: Settings, source: StationFile, bucket: str, key: str
) -> float:
    """A plain station → S3 copy (token, streaming GET, sequential multipart parts); returns the seconds."""
    part_size = settings.s3.rs_s3_part_size
    began = time.perf_counter()
    token = await station_token(http, settings)
    upload_id = (await s3.create_multipart_upload(Bucket=bucket, Key=key))["UploadId"]
    parts: list[dict[str, Any]] = []
    try:
        buffer = bytearray()
        async with http.stream(
            "GET", source.download_url, headers={"Authorization": f"Bearer {token}"}, follow_redirects=True
        ) as response:
            response.raise_for_status()
            async for chunk in response.aiter_bytes():
                buffer += chunk
                while len(buffer) >= part_size:
                    body = bytes(buffer[:part_size])
                    del buffer[:part_size]
                    number = len(parts) + 1
                    put = await s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
                    parts.append({"PartNumber": number, "ETag": put["ETag"]})
        if buffer or not parts:
            number = len(parts) + 1
            put = await s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(buffer)
            )
            parts.append({"PartNumber": number, "ETag": put["ETag"]})
        await s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    except BaseException:
        with contextlib.suppress(Exception):
            await s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    seconds = time.perf_counter() - began
    head = await s3.head_object(Bucket=bucket, Key=key)
    if head["ContentLength"] != source.size:
        raise BenchError(f"baseline copy has {head['ContentLength']} bytes, expected {source.size}")
    return seconds
