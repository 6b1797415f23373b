"""Station side effects: OAuth2 tokens, STAC searches and authenticated downloads streamed into S3."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urljoin

import cql2
import httpx
from pystac_client.exceptions import APIError
from temporalio import activity

from rs_ondemand.activities._heartbeat import Heartbeater
from rs_ondemand.activities._stac import open_stac_api
from rs_ondemand.activities.storage import MD5_METADATA, ObjectStore, checkpoint_key, manifest_prefix
from rs_ondemand.config import StationSettings
from rs_ondemand.errors import (
    ChecksumMismatchError,
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    OnDemandError,
    StationAuthError,
    StationUnavailableError,
    TransferError,
    UntrustedLocationError,
    cap,
)
from rs_ondemand.models.common import check_safe_name
from rs_ondemand.models.staging import (
    AssetTransfer,
    ItemRef,
    PageRef,
    SearchResult,
    StationSearchInput,
    TransferResult,
)
from rs_ondemand.telemetry import tracer

CHECKSUM_ATTEMPTS = 3
"""Attempts after which a checksum mismatch is final: the station's copy itself is corrupt."""
TOKEN_MARGIN_S = 60
"""Refresh a token this long before it expires, so a download never starts with a token about to lapse."""
MAX_REDIRECTS = 3


class StationClient:
    """One station: its OAuth2 token (password grant, refresh grant, re-login) and its downloads."""

    def __init__(self, settings: StationSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.kind = settings.kind
        self._http = http
        self._root = (settings.odata_url or "").rstrip("/") + "/"
        self._lock = asyncio.Lock()
        self._access: str | None = None
        self._access_expiry = 0.0
        self._refresh: str | None = None
        self._refresh_expiry = 0.0

    def owns(self, url: str) -> bool:
        """Whether `url` lies below this station's download root (the only place its token may go)."""
        return bool(self.settings.odata_url) and url.startswith(self._root)

    async def token(self, *, renew: bool = False) -> str:
        async with self._lock:
            now = time.monotonic()
            if renew:
                self._access = None
            if self._access and now < self._access_expiry - TOKEN_MARGIN_S:
                return self._access
            if self._refresh and now < self._refresh_expiry - TOKEN_MARGIN_S:
                grant = {"grant_type": "refresh_token", "refresh_token": self._refresh}
                if await self._request_token(grant, now):
                    return self._access  # type: ignore[return-value]
            await self._request_token(self._password_grant(), now, required=True)
            return self._access  # type: ignore[return-value]

    def _password_grant(self) -> dict[str, str]:
        s = self.settings
        if not (s.token_url and s.username and s.password):
            raise ConfigurationError(f"no OAuth2 credentials configured for station {self.kind!r}")
        return {
            "grant_type": "password",
            "client_id": s.client_id or "",
            "client_secret": s.client_secret.get_secret_value() if s.client_secret else "",
            "username": s.username,
            "password": s.password.get_secret_value(),
        }

    async def _request_token(self, form: dict[str, str], now: float, *, required: bool = False) -> bool:
        assert self.settings.token_url
        try:
            response = await self._http.post(self.settings.token_url, data=form, timeout=self.settings.timeout_s)
        except httpx.HTTPError as err:
            raise StationUnavailableError(f"{self.kind} token endpoint unreachable: {err!r}") from err
        if response.status_code >= 500:
            raise StationUnavailableError(f"{self.kind} token endpoint answered {response.status_code}")
        if response.status_code != 200:
            if required:
                raise StationAuthError(
                    f"{self.kind} refused our credentials ({response.status_code}): {cap(response.text, 300)}"
                )
            return False
        body = response.json()
        self._access = body["access_token"]
        self._access_expiry = now + float(body.get("expires_in", 300))
        self._refresh = body.get("refresh_token")
        self._refresh_expiry = now + float(body.get("refresh_expires_in", 0))
        return True

    @asynccontextmanager
    async def download(self, url: str, *, offset: int = 0) -> AsyncIterator[httpx.Response]:
        """An open streaming response for `url`, authenticated, with redirects kept inside this station."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        renewed = False
        for _ in range(MAX_REDIRECTS + 2):
            if not self.owns(url):
                raise UntrustedLocationError(url)
            headers["Authorization"] = f"Bearer {await self.token(renew=renewed)}"
            request = self._http.build_request("GET", url, headers=headers)
            try:
                response = await self._http.send(request, stream=True)
            except httpx.HTTPError as err:
                raise StationUnavailableError(f"{self.kind} unreachable for {url}: {err!r}") from err
            try:
                if response.is_redirect:
                    # The CADIP ICD allows a 307 to the storage URL; re-apply our token only inside the station.
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code == 401 and not renewed:
                    renewed = True  # the token lapsed mid-request or was revoked: log in again once
                    continue
                _raise_for_download_status(self.kind, url, response)
                yield response
                return
            finally:
                await response.aclose()
        raise TransferError(f"too many redirects or authentication failures downloading {url}")


def _raise_for_download_status(kind: str, url: str, response: httpx.Response) -> None:
    status = response.status_code
    if status in (200, 206):
        return
    if status == 401 or status == 403:
        raise StationAuthError(f"{kind} refused the download of {url} ({status})")
    if status == 404:
        raise NotFoundError(f"{kind} has no file at {url} (404)")
    if status >= 500 or status == 429:
        raise StationUnavailableError(f"{kind} answered {status} for {url}")
    raise TransferError(f"{kind} answered {status} for {url}")


class StationRegistry:
    """The configured stations, found by kind (for searches) or by download URL (for transfers)."""

    def __init__(self, stations: list[StationSettings], http: httpx.AsyncClient) -> None:
        self._clients = {s.kind: StationClient(s, http) for s in stations}

    def by_kind(self, kind: str) -> StationClient:
        return self._clients[kind]

    def for_url(self, url: str) -> StationClient:
        for client in self._clients.values():
            if client.owns(url):
                return client
        raise UntrustedLocationError(url)


def _search_pages(url: str, timeout_s: float, search: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Blocking pystac-client search, one result page at a time, following the paging links."""
    with open_stac_api(url, timeout_s) as client:
        yield from (page.get("features", []) for page in client.search(**search).pages_as_dicts())


def _station_error(url: str, err: Exception) -> OnDemandError:
    status = getattr(err, "status_code", None)
    if isinstance(err, APIError) and status == 404:
        return NotFoundError(f"station search at {url} answered 404: {cap(str(err), 300)}")
    if isinstance(err, APIError) and status is not None and status < 500:
        return InvalidInputError(f"station search at {url} was refused ({status}): {cap(str(err), 300)}")
    return StationUnavailableError(f"station search at {url} failed: {cap(str(err), 300)}")


def _checked_filter(cql2_json: dict[str, Any]) -> dict[str, Any]:
    """Validate a CQL2-JSON filter with the cql2 library before any station sees it."""
    try:
        cql2.Expr(cql2_json).validate()
    except (cql2.ValidationError, cql2.ParseError, ValueError) as err:
        raise InvalidInputError(f"invalid CQL2-JSON filter: {cap(str(err), 500)}") from err
    return cql2_json


class StationActivities:
    """Activities whose outside system is a station (searches, and downloads streamed into S3)."""

    def __init__(self, stations: StationRegistry, store: ObjectStore) -> None:
        self.stations = stations
        self.store = store

    @activity.defn
    async def search_station(self, request: StationSearchInput) -> SearchResult:
        """Search a station's STAC API and keep every result in the work bucket, one manifest per item and
        one page of references per result page: the workflow only ever sees the page references."""
        station = self.stations.by_kind(request.station).settings
        if not station.url:
            raise ConfigurationError(f"{request.station.upper()}_URL is not configured")
        search: dict[str, Any] = {"limit": request.page_size, "method": "POST"}
        for name in ("ids", "collections", "sortby", "max_items"):
            if getattr(request, name) is not None:
                search[name] = getattr(request, name)
        if request.filter is not None:
            search |= {"filter": _checked_filter(request.filter), "filter_lang": "cql2-json"}
        result = SearchResult(pages=[])
        pages = _search_pages(station.url, station.timeout_s, search)
        with tracer.start_as_current_span("station.search", attributes={"rs.station": request.station}) as span:
            async with Heartbeater(lambda: {"items": result.items}):
                while True:
                    try:
                        page = await asyncio.to_thread(next, pages, None)
                    except (APIError, OSError) as err:
                        raise _station_error(station.url, err) from err
                    if page is None:
                        break
                    if page:
                        result.pages.append(await self._store_page(request.request_id, len(result.pages), page))
            span.set_attribute("rs.items", sum(p.items for p in result.pages))
        result.items = sum(p.items for p in result.pages)
        result.assets = sum(p.assets for p in result.pages)
        result.bytes = sum(p.bytes for p in result.pages)
        return result

    async def _store_page(self, request_id: str, number: int, items: list[dict[str, Any]]) -> PageRef:
        refs = await asyncio.gather(*(self._store_manifest(request_id, item) for item in items))
        key = f"{manifest_prefix(request_id)}pages/{number:06d}.json"
        await self.store.put_json(self.store.settings.rs_work_bucket, key, [ref.model_dump() for ref in refs])
        return PageRef(
            key=key,
            items=len(refs),
            assets=sum(r.asset_count for r in refs),
            bytes=sum(r.total_bytes for r in refs),
        )

    async def _store_manifest(self, request_id: str, item: dict[str, Any]) -> ItemRef:
        item_id = item.get("id", "")
        try:
            check_safe_name(item_id)
        except ValueError as err:
            raise InvalidInputError(f"the station returned an item id unusable as an S3 key: {err}") from err
        key = f"{manifest_prefix(request_id)}items/{item_id}.json"
        await self.store.put_json(self.store.settings.rs_work_bucket, key, item)
        assets = item.get("assets", {})
        size = sum(a.get("file:size", 0) for a in assets.values() if isinstance(a.get("file:size"), int))
        return ItemRef(item_id=item_id, manifest_key=key, asset_count=len(assets), total_bytes=size)

    @activity.defn
    async def stream_asset(self, transfer: AssetTransfer) -> TransferResult:
        """Copy one asset from its station to S3, verifying size and MD5 before the object becomes visible.

        A retry resumes from the last stored part (HTTP Range on the station side), so a crash costs at most
        one part of re-download. The upload is kept for the next attempt on a transient failure and aborted
        when no attempt follows (cancel, final error, last attempt).
        """
        station = self.stations.for_url(transfer.href)
        metadata = {MD5_METADATA: transfer.md5} if transfer.md5 else {}
        writer = self.store.writer(
            transfer.bucket, transfer.key, metadata, checkpoint_key(transfer.bucket, transfer.key)
        )
        offset = received = await writer.resume()
        if offset:
            activity.logger.info("resuming %s at byte %d", transfer.key, offset)
        with tracer.start_as_current_span(
            "station.download_to_s3",
            attributes={"rs.station": station.kind, "rs.s3.key": transfer.key, "rs.resumed_at": offset},
        ):
            async with Heartbeater(lambda: {"key": transfer.key, "bytes": received, "resumed_at": offset}):
                try:
                    async with station.download(transfer.href, offset=offset) as response:
                        if offset and response.status_code != 206:
                            raise TransferError(f"{station.kind} ignored the Range request for {transfer.href}")
                        async for chunk in response.aiter_bytes():
                            received += len(chunk)
                            await writer.write(chunk)
                    actual = writer.hexdigest()
                    _verify(transfer, received, actual)
                    await writer.complete()
                except BaseException as err:
                    if isinstance(err, ChecksumMismatchError) and activity.info().attempt >= CHECKSUM_ATTEMPTS:
                        err.non_retryable = True
                    # Corrupted bytes may sit in any stored part, so a mismatch always starts again from zero.
                    if isinstance(err, ChecksumMismatchError) or _is_final(err):
                        await writer.abort()
                    if isinstance(err, httpx.HTTPError):
                        raise TransferError(
                            f"download of {transfer.asset_name!r} broke off after {received} bytes: {err!r}"
                        ) from err
                    raise
        if not transfer.md5:
            # No announced checksum: record the one we computed, so publication can still verify the object.
            await self.store.set_metadata(transfer.bucket, transfer.key, {MD5_METADATA: actual})
        return TransferResult(key=transfer.key, size=received, md5=actual)


def _is_final(err: BaseException) -> bool:
    """Whether no further attempt of this activity will follow `err`."""
    if isinstance(err, asyncio.CancelledError | OnDemandError) and getattr(err, "non_retryable", True):
        return True
    info = activity.info()
    maximum = info.retry_policy.maximum_attempts if info.retry_policy else 0
    return 0 < maximum <= info.attempt


def _verify(transfer: AssetTransfer, received: int, md5: str) -> None:
    if transfer.size is not None and received != transfer.size:
        raise TransferError(
            f"{transfer.asset_name!r}: received {received} bytes, the station announced {transfer.size}"
        )
    if transfer.md5 and md5 != transfer.md5:
        raise ChecksumMismatchError(transfer.asset_name, transfer.md5, md5)
