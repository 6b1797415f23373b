"""Station side effects: searches (OData or STAC) and authenticated downloads streamed into S3."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import httpx
from pystac_client.exceptions import APIError
from temporalio import activity

from rs_ondemand.activities._heartbeat import Heartbeater
from rs_ondemand.activities._stac import open_stac_api
from rs_ondemand.activities.manifests import store_page_list, store_search_page
from rs_ondemand.activities.odata_search import product_item_pages, session_items
from rs_ondemand.activities.station_client import TOKEN_MARGIN_S, StationClient, StationClients
from rs_ondemand.activities.storage import MD5_METADATA, ObjectStore, checkpoint_key
from rs_ondemand.cql2_check import Cql2Error, check_cql2
from rs_ondemand.errors import (
    ChecksumMismatchError,
    InvalidInputError,
    NotFoundError,
    OnDemandError,
    StationAuthError,
    StationUnavailableError,
    TransferError,
    cap,
)
from rs_ondemand.models.staging import (
    AssetTransfer,
    PageRef,
    SearchResult,
    StationSearchInput,
    TransferResult,
)
from rs_ondemand.stations.odata_stac import session_gaps
from rs_ondemand.stations.registry import Kind, StationRegistry, Target
from rs_ondemand.telemetry import tracer

__all__ = ["TOKEN_MARGIN_S", "StationActivities", "StationClient", "StationClients"]

CHECKSUM_ATTEMPTS = 3
"""Attempts after which a checksum mismatch is final: the station's copy itself is corrupt."""


def _search_pages(
    url: str, timeout_s: float, search: dict[str, Any], headers: dict[str, str]
) -> Iterator[list[dict[str, Any]]]:
    """Blocking pystac-client search, one result page at a time, following the paging links."""
    with open_stac_api(url, timeout_s, headers) as client:
        yield from (page.get("features", []) for page in client.search(**search).pages_as_dicts())


def _station_error(url: str, err: Exception) -> OnDemandError:
    status = getattr(err, "status_code", None)
    if isinstance(err, APIError) and status in (401, 403):
        return StationAuthError(f"station search at {url} was refused ({status}): {cap(str(err), 300)}")
    if isinstance(err, APIError) and status == 404:
        return NotFoundError(f"station search at {url} answered 404: {cap(str(err), 300)}")
    if isinstance(err, APIError) and status is not None and status < 500:
        return InvalidInputError(f"station search at {url} was refused ({status}): {cap(str(err), 300)}")
    answered = f" ({status})" if status is not None else ""
    return StationUnavailableError(f"station search at {url} failed{answered}: {cap(str(err), 300)}")


def _checked_filter(cql2_json: dict[str, Any]) -> dict[str, Any]:
    """Validate a CQL2-JSON filter with the cql2 library before any station sees it."""
    try:
        check_cql2(cql2_json)
    except Cql2Error as err:
        raise InvalidInputError(f"invalid CQL2-JSON filter: {cap(str(err), 500)}") from err
    return cql2_json


class StationActivities:
    """Activities whose outside system is a station (searches, and downloads streamed into S3)."""

    def __init__(self, stations: StationClients, store: ObjectStore) -> None:
        self.stations = stations
        self.store = store

    @activity.defn
    async def search_station(self, request: StationSearchInput) -> SearchResult:
        """Search a station (its OData interface or its STAC facade) and keep every result item in the work
        bucket, one manifest per item and one page of references per result page: the workflow only ever sees
        the page references. The request's station collection is resolved through the station registry."""
        if request.collections is not None and len(request.collections) > 1:
            raise InvalidInputError(f"one station collection per search, not {request.collections}")
        collection = request.collections[0] if request.collections else None
        target = self.stations.registry.resolve(request.station, collection)
        station = self.stations[target.station.name]
        result = SearchResult(pages=[], station=station.name)
        attributes = {"rs.station": station.name, "rs.station.api": station.config.api}
        with tracer.start_as_current_span("station.search", attributes=attributes) as span:
            async with Heartbeater(lambda: {"items": result.items}):
                async for page in self._pages(station, target, request):
                    if request.station == "cadip":
                        result.warnings += _complete_sessions(page, request.require_complete)
                    result.pages.append(await self._store_page(request.request_id, len(result.pages), page))
            span.set_attribute("rs.items", sum(p.items for p in result.pages))
        result.items = sum(p.items for p in result.pages)
        result.assets = sum(p.assets for p in result.pages)
        result.bytes = sum(p.bytes for p in result.pages)
        if len(result.pages) > request.inline_pages:
            result.page_list = await store_page_list(self.store, request.request_id, result.pages)
            result.pages = []
        return result

    def _pages(
        self, station: StationClient, target: Target, request: StationSearchInput
    ) -> AsyncIterator[list[dict[str, Any]]]:
        if request.filter is not None:
            _checked_filter(request.filter)
        if station.config.api == "stac":
            return self._stac_pages(station, target, request)
        return self._odata_pages(station, target, request)

    async def _odata_pages(
        self, station: StationClient, target: Target, request: StationSearchInput
    ) -> AsyncIterator[list[dict[str, Any]]]:
        if request.station == "cadip":
            if not request.ids:
                raise InvalidInputError("a CADIP search on an OData station names its sessions (ids)")
            for start in range(0, len(request.ids), request.page_size):
                ids = request.ids[start : start + request.page_size]
                if items := await session_items(station, ids, target.satellites):
                    yield items
            return
        if request.ids is not None:
            raise InvalidInputError(
                f"a {request.station.upper()} search on an OData station selects by filter, not ids"
            )
        async for items in product_item_pages(
            station, request.filter, request.sortby, request.max_items, target.satellites
        ):
            for start in range(0, len(items), request.page_size):
                yield items[start : start + request.page_size]

    async def _stac_pages(
        self, station: StationClient, target: Target, request: StationSearchInput
    ) -> AsyncIterator[list[dict[str, Any]]]:
        url = station.config.url
        # The API key is the facade's own; the bearer token only goes there if the facade is inside the station.
        headers = await station.headers(bearer=station.owns(url))
        if target.stac_collection is not None:
            await _check_stac_collection(station, target, headers)
        search: dict[str, Any] = {"limit": request.page_size, "method": "POST"}
        for name in ("ids", "sortby", "max_items"):
            if getattr(request, name) is not None:
                search[name] = getattr(request, name)
        if target.stac_collection is not None:
            search["collections"] = [target.stac_collection]
        if request.filter is not None:
            search |= {"filter": request.filter, "filter_lang": "cql2-json"}
        pages = _search_pages(url, station.config.timeout_s, search, headers)
        while True:
            try:
                page = await asyncio.to_thread(next, pages, None)
            except (APIError, OSError) as err:
                raise _station_error(url, err) from err
            if page is None:
                return
            if page:
                yield page

    async def _store_page(self, request_id: str, number: int, items: list[dict[str, Any]]) -> PageRef:
        return await store_search_page(self.store, request_id, number, items)

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
            attributes={"rs.station": station.name, "rs.s3.key": transfer.key, "rs.resumed_at": offset},
        ):
            async with Heartbeater(lambda: {"key": transfer.key, "bytes": received, "resumed_at": offset}):
                try:
                    async with station.download(transfer.href, offset=offset) as response:
                        if offset and response.status_code != 206:
                            raise TransferError(f"{station.name} ignored the Range request for {transfer.href}")
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


def _complete_sessions(items: list[dict[str, Any]], required: bool) -> list[str]:
    """Warnings for incomplete sessions (a channel without its final block, or with missing blocks).

    Raises:
        InvalidInputError: when completeness is required and a session is incomplete.
    """
    warnings = []
    for item in items:
        if gaps := session_gaps(item):
            warning = f"session {item.get('id')} is incomplete: {'; '.join(gaps)}"
            if required:
                raise InvalidInputError(f"{warning} (completeness was required)")
            warnings.append(warning)
    return warnings


async def _check_stac_collection(station: StationClient, target: Target, headers: dict[str, str]) -> None:
    """An unknown collection is refused at once (a STAC search would just find nothing)."""
    url = f"{station.config.url.rstrip('/')}/collections/{quote(target.stac_collection or '', safe='')}"
    try:
        response = await station.http.get(url, headers=headers, timeout=station.config.timeout_s)
    except httpx.HTTPError as err:
        raise StationUnavailableError(f"{station.name} unreachable for {url}: {err!r}") from err
    if response.status_code == 404:
        raise InvalidInputError(
            f"unknown {station.kind.upper()} collection {target.collection!r}: station {station.name} has no "
            f"collection {target.stac_collection!r} ({url} answered 404)"
        )
    if response.status_code in (401, 403):
        raise StationAuthError(f"{station.name} refused {url} ({response.status_code})")
    if response.status_code != 200:
        raise StationUnavailableError(f"{station.name} answered {response.status_code} for {url}")


async def check_station_collection(registry: StationRegistry, kind: Kind, collection: str | None) -> None:
    """Refuse a station collection a request could not use, before anything starts (a schedule, say): unknown
    to the registry, or, for a STAC station, unknown to its facade.

    Raises:
        InvalidInputError, or the station's error if it cannot be asked.
    """
    target = registry.resolve(kind, collection)
    if target.station.api != "stac" or target.stac_collection is None:
        return
    async with httpx.AsyncClient(timeout=target.station.timeout_s) as http:
        station = StationClient(target.station, http)
        await _check_stac_collection(station, target, await station.headers(bearer=station.owns(station.config.url)))
