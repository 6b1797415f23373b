"""The one seam to the STAC catalog (`CatalogClient`): searches through pystac-client, writes through the
transaction extension, with the catalog's auth, timeouts, error mapping and RS-Server's collection naming."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import httpx
from pystac_client.exceptions import APIError

from rs_ondemand.activities._auth import API_KEY_HEADER, tokens_for
from rs_ondemand.activities._stac import open_stac_api
from rs_ondemand.config import CatalogSettings
from rs_ondemand.errors import CatalogError, CatalogRejectedError, cap

ID_BATCH = 200
"""Item ids per existence query: keeps the search body small for requests of thousands of items."""


CREATED_BY = "rs_ondemand:created_by"
"""Field of a collection we created: the request (workflow id) that created it, the one that may remove it again
while it is empty. Collections that existed before, or were created by anyone else, carry no such claim."""


def _collection_document(collection_id: str, created_by: str | None = None) -> dict[str, Any]:
    # A missing collection is created, as the RS staging service does (docs/rs-compatibility.md#collection-creation).
    return ({CREATED_BY: created_by} if created_by else {}) | {
        "type": "Collection",
        "id": collection_id,
        "stac_version": "1.1.0",
        "description": f"Collection {collection_id} automatically created by rs-ondemand staging",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [["2000-01-01T00:00:00Z", None]]},
        },
        "links": [],
    }


IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})


class CatalogClient:
    """The one seam to the STAC catalog: pystac-client for searches, the transaction extension for writes.

    With credentials configured, every request carries them (`x-api-key`, or an OAuth2 bearer token renewed
    once on 401/403). With RS-Server naming, a collection is `<owner>:<collection>` in paths and
    `<owner>_<collection>` in searches, as RS-Server's catalog addresses another owner's collections.
    """

    def __init__(self, settings: CatalogSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.url = settings.url.rstrip("/")
        self._http = http
        self._tokens = tokens_for("catalog", settings, http, CatalogError, CatalogRejectedError)

    async def _headers(self, *, renew: bool = False) -> dict[str, str]:
        headers = {}
        if self.settings.api_key:
            headers[API_KEY_HEADER] = self.settings.api_key.get_secret_value()
        if self._tokens is not None:
            headers["Authorization"] = f"Bearer {await self._tokens.token(renew=renew)}"
        return headers

    def _rs_server(self, owner: str | None) -> bool:
        return self.settings.naming == "rs-server" and bool(owner)

    def collection_path(self, collection_id: str, owner: str | None = None) -> str:
        """`/collections/<id>`, or `/collections/<owner>:<id>` with RS-Server naming."""
        name = f"{owner}:{collection_id}" if self._rs_server(owner) else collection_id
        return f"/collections/{quote(name, safe=':')}"

    def search_collection(self, collection_id: str, owner: str | None = None) -> str:
        """The collection id a search names: `<owner>_<id>` with RS-Server naming."""
        return f"{owner}_{collection_id}" if self._rs_server(owner) else collection_id

    async def _request(self, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
        url, timeout = f"{self.url}{path}", self.settings.timeout_s
        try:
            return await self._http.request(method, url, headers=headers, timeout=timeout, **kwargs)
        except (httpx.ReadError, httpx.RemoteProtocolError):
            # The catalog closed the kept-alive connection this went out on (uvicorn does, after a 500): an
            # idempotent request goes out again, once, on a new connection.
            if method not in IDEMPOTENT:
                raise
        return await self._http.request(method, url, headers=headers, timeout=timeout, **kwargs)

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for renew in (False, True):
            try:
                response = await self._request(method, path, await self._headers(renew=renew), **kwargs)
            except httpx.HTTPError as err:
                raise CatalogError(f"catalog unreachable ({method} {path}): {err!r}") from err
            if response.status_code not in (401, 403) or self._tokens is None or renew:
                break  # else: the token lapsed or was revoked, log in again once
        if response.status_code >= 500:
            raise CatalogError(f"catalog answered {response.status_code} to {method} {path}: {cap(response.text)}")
        if response.status_code in (401, 403):
            raise CatalogRejectedError(
                f"catalog refused {method} {path} ({response.status_code}): {cap(response.text)}"
            )
        return response

    async def _collection(self, collection_id: str, owner: str | None = None) -> dict[str, Any] | None:
        """The collection's document; None if there is no such collection."""
        response = await self._send("GET", self.collection_path(collection_id, owner))
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise CatalogRejectedError(f"checking collection {collection_id!r} answered {response.status_code}")
        document: dict[str, Any] = response.json()
        return document

    async def ensure_collection(
        self, collection_id: str, owner: str | None = None, *, created_by: str | None = None
    ) -> bool:
        """Create the collection if it is missing, on behalf of the request `created_by` (recorded in it);
        returns True if it was created now."""
        if await self._collection(collection_id, owner) is not None:
            return False
        document = _collection_document(collection_id, created_by)
        if self._rs_server(owner):
            document["owner"] = owner  # RS-Server files the collection under its owner
        response = await self._send("POST", "/collections", json=document)
        if response.status_code in (200, 201, 409):  # 409: a concurrent request created it first
            return response.status_code != 409
        raise CatalogRejectedError(
            f"creating collection {collection_id!r} was refused ({response.status_code}): {cap(response.text)}"
        )

    def _items_blocking(
        self, collection_id: str, item_ids: list[str], fields: dict[str, Any] | None, headers: dict[str, str]
    ) -> list[Any]:
        found: list[Any] = []
        with open_stac_api(self.url, self.settings.timeout_s, headers) as client:
            for start in range(0, len(item_ids), ID_BATCH):
                batch = item_ids[start : start + ID_BATCH]
                search = client.search(
                    collections=[collection_id], ids=batch, limit=len(batch), method="POST", fields=fields
                )
                found += search.items_as_dicts()
        return found

    async def items(
        self,
        collection_id: str,
        item_ids: list[str],
        fields: dict[str, Any] | None = None,
        owner: str | None = None,
    ) -> list[dict[str, Any]]:
        """The items of `collection_id` among `item_ids` (absent ones are simply not returned)."""
        if not item_ids:
            return []
        searched = self.search_collection(collection_id, owner)
        try:
            return await asyncio.to_thread(self._items_blocking, searched, item_ids, fields, await self._headers())
        except (APIError, OSError) as err:
            raise _read_failed(f"catalog search in {collection_id!r}", err) from err

    def _all_blocking(self, collection_id: str | None, headers: dict[str, str]) -> list[Any]:
        with open_stac_api(self.url, self.settings.timeout_s, headers) as client:
            if collection_id is None:
                return [collection.id for collection in client.get_collections()]
            return list(client.search(collections=[collection_id], limit=500, method="GET").items_as_dicts())

    async def collection_ids(self) -> list[str]:
        """Every collection of the catalog."""
        try:
            return list(await asyncio.to_thread(self._all_blocking, None, await self._headers()))
        except (APIError, OSError) as err:
            raise _read_failed("listing the catalog's collections", err) from err

    async def all_items(self, collection_id: str) -> list[dict[str, Any]]:
        """Every item of a collection, every result page followed."""
        try:
            return await asyncio.to_thread(self._all_blocking, collection_id, await self._headers())
        except (APIError, OSError) as err:
            raise _read_failed(f"listing the items of {collection_id!r}", err) from err

    async def remove_if_empty(self, collection_id: str, created_by: str, owner: str | None = None) -> bool:
        """Delete the collection if the request `created_by` created it and it holds no item; True if deleted.

        Between the check and the delete another request could insert its first item (the catalog has no
        "delete if empty"): a window of one round trip, and only for a collection this request created and left
        empty. A publication that finds its collection gone creates it again (`create_item`)."""
        collection = await self._collection(collection_id, owner)
        if collection is None or collection.get(CREATED_BY) != created_by:
            return False  # gone already; or it existed before the request, or another request created it
        path = self.collection_path(collection_id, owner)
        items = await self._send("GET", f"{path}/items", params={"limit": 1})
        if items.status_code != 200:
            raise CatalogRejectedError(f"listing collection {collection_id!r} answered {items.status_code}")
        if items.json().get("features"):
            return False
        response = await self._send("DELETE", path)
        if response.status_code not in (200, 204, 404):
            raise CatalogRejectedError(
                f"deleting collection {collection_id!r} was refused ({response.status_code}): {cap(response.text)}"
            )
        return response.status_code != 404

    async def create_item(self, collection_id: str, item: dict[str, Any], owner: str | None = None) -> bool:
        """Insert an item; False if it already exists (a concurrent request published it: that is done)."""
        return await self._insert(collection_id, owner, item, f"item {item.get('id')!r}")

    async def create_items(self, collection_id: str, items: list[dict[str, Any]], owner: str | None = None) -> bool:
        """Insert items in one write (an ItemCollection, which stac-fastapi-pgstac loads in one transaction);
        False, with nothing inserted, if any of them already exists. Through RS-Server, which takes one item per
        request, they go one by one: False then if any existed, the others inserted."""
        if not items:
            return True
        if self._rs_server(owner):
            created = [await self.create_item(collection_id, item, owner) for item in items]
            return all(created)
        collection = {"type": "FeatureCollection", "features": items}
        return await self._insert(collection_id, owner, collection, f"{len(items)} items of {collection_id!r}")

    async def _insert(self, collection_id: str, owner: str | None, body: dict[str, Any], what: str) -> bool:
        """POST `body` (an item or an ItemCollection) to the collection's items: True if inserted, False if (some
        of) it already exists (409). A collection that is gone (removed, empty, by the failed request that
        created it) is created again."""
        path = f"{self.collection_path(collection_id, owner)}/items"
        failure: CatalogError | None = None
        try:
            response: httpx.Response | None = await self._send("POST", path, json=body)
        except CatalogError as err:  # stac-fastapi-pgstac answers 500 to an item of a missing collection
            failure, response = err, None
        if response is None or response.status_code == 404:
            if not await self.ensure_collection(collection_id, owner) and failure is not None:
                raise failure  # the collection is there: the catalog failed for another reason
            response = await self._send("POST", path, json=body)
        if response.status_code in (200, 201):
            return True
        if response.status_code == 409:
            return False
        raise CatalogRejectedError(f"catalog refused {what} ({response.status_code}): {cap(response.text)}")

    async def upsert_item(self, collection_id: str, item: dict[str, Any], owner: str | None = None) -> bool:
        """Insert an item, or replace the one with its id; True if it was created. A processed product is
        published again when its run is retried or redone, and the newest metadata is the one to keep."""
        if await self.create_item(collection_id, item, owner):
            return True
        path = f"{self.collection_path(collection_id, owner)}/items/{quote(item['id'], safe='')}"
        response = await self._send("PUT", path, json=item)
        if response.status_code in (200, 201, 204):
            return False
        raise CatalogRejectedError(
            f"catalog refused to replace item {item['id']!r} ({response.status_code}): {cap(response.text)}"
        )


def _read_failed(what: str, err: APIError | OSError) -> CatalogError:
    """A read through pystac-client that failed: the catalog answered an error status, or it did not answer at
    all (pystac-client raises that too as an `APIError`, without a status), which says "catalog unreachable" as
    the writes do: the operator's first clue."""
    if getattr(err, "status_code", None) is not None:
        return CatalogError(f"{what} failed: {cap(str(err))}")
    return CatalogError(f"catalog unreachable ({what}): {cap(str(err))}")
