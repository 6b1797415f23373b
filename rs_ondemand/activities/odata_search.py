"""Searches of an ICD OData station (CADIP `Sessions`/`Files`, AUXIP and PRIP `Products`), every page, giving the
same STAC items a STAC facade would (mapping in `stations/odata_stac.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urljoin

import cql2

from rs_ondemand.activities.station_client import StationClient
from rs_ondemand.errors import InvalidInputError, StationUnavailableError, cap
from rs_ondemand.stations.odata_query import literal, products_filter, products_orderby, sessions_filter
from rs_ondemand.stations.odata_stac import (
    ODataEntityError,
    platform_of,
    product_item,
    session_item,
)

PAGE = 200
"""`$top` of each listing request; a station may answer fewer and page with `@odata.nextLink`."""
MAX_PAGES = 100_000


async def odata_pages(client: StationClient, entity_set: str, params: dict[str, str]) -> AsyncIterator[list[Any]]:
    """Every page of a listing: by `@odata.nextLink` when the station gives one, else by `$skip` until an empty
    page (a station may cap `$top` without saying so)."""
    url: str | None = urljoin(client.config.url.rstrip("/") + "/", entity_set)
    query: dict[str, str] | None = {**params, "$top": str(PAGE)}
    skip, previous_first = 0, None
    for _ in range(MAX_PAGES):
        assert url is not None
        body = await client.get_json(url, query)
        values = body.get("value")
        if not isinstance(values, list):
            raise InvalidInputError(f"{client.name} answered {entity_set} without a `value` list")
        if values:
            yield values
        next_link = body.get("@odata.nextLink")
        if isinstance(next_link, str):
            url, query = urljoin(url, next_link), None
            continue
        if not values or query is None:  # an empty page, or the last page of server-driven paging
            return
        first = values[0].get("Id") if isinstance(values[0], dict) else None
        if skip and first is not None and first == previous_first:
            raise StationUnavailableError(f"{client.name} ignores $skip on {entity_set}: pages repeat")
        previous_first = first
        skip += len(values)
        query = {**params, "$top": str(PAGE), "$skip": str(skip)}
    raise StationUnavailableError(f"{client.name}: more than {MAX_PAGES} pages of {entity_set}")


async def _all(client: StationClient, entity_set: str, params: dict[str, str]) -> list[Any]:
    return [entity async for page in odata_pages(client, entity_set, params) for entity in page]


async def _session_files(client: StationClient, session_id: str) -> list[dict[str, Any]]:
    """The files of a session, by `SessionId` (the spelling of the real stations) or, if refused, `SessionID`."""
    for field in ("SessionId", "SessionID"):
        try:
            return await _all(client, "Files", {"$filter": f"{field} eq {literal(session_id)}"})
        except InvalidInputError as err:
            refused = err
    raise refused


async def _expanded_files(client: StationClient, session: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The session's `Files` as expanded in it (following a nested next link), or None if it was not expanded."""
    files = session.get("Files")
    if not isinstance(files, list):
        return None
    link = session.get("Files@odata.nextLink")
    while isinstance(link, str):
        body = await client.get_json(urljoin(client.config.url.rstrip("/") + "/", link))
        files += body.get("value") or []
        link = body.get("@odata.nextLink")
    return files


async def session_items(
    client: StationClient, session_ids: list[str], satellites: tuple[str, ...] | None
) -> list[dict[str, Any]]:
    """The items of the sessions among `session_ids` that the station has (ordered as asked)."""
    found = await _all(client, "Sessions", {"$filter": sessions_filter(session_ids, satellites), "$expand": "Files"})
    items = []
    for session_id in session_ids:
        # A session may be announced more than once (a retransfer): the newest entity describes it, and its
        # files are every file the station lists under its SessionId.
        entities = [s for s in found if isinstance(s, dict) and s.get("SessionId") == session_id]
        if not entities:
            continue
        expansions = [await _expanded_files(client, s) for s in entities]
        if all(files is not None for files in expansions):
            files = {f["Id"]: f for files in expansions for f in files or [] if isinstance(f, dict) and "Id" in f}
            listed = list(files.values())
        else:  # the station does not expand Files: list them by session
            listed = await _session_files(client, session_id)
        newest = max(entities, key=lambda s: str(s.get("PublicationDate") or ""))
        try:
            items.append(session_item(newest, listed, client.config.download_root or client.config.url))
        except ODataEntityError as err:
            raise InvalidInputError(f"{client.name} session {session_id}: {err}") from err
    return items


def _matcher(cql2_json: dict[str, Any] | None) -> Any:
    if cql2_json is None:
        return lambda item: True
    expression = cql2.Expr(cql2_json)

    def matches(item: dict[str, Any]) -> bool:
        try:
            return bool(expression.matches(item))
        except Exception as err:  # cql2 raises a bare Exception for what it cannot evaluate
            raise InvalidInputError(f"the filter cannot be evaluated on an OData station's products: {err}") from err

    return matches


async def product_item_pages(
    client: StationClient,
    cql2_json: dict[str, Any] | None,
    sortby: list[dict[str, str]] | None,
    max_items: int | None,
    satellites: tuple[str, ...] | None,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of the items of the products the CQL2 filter selects, in the `sortby` order, `max_items` at most."""
    params = {"$orderby": products_orderby(sortby), "$expand": "Attributes"}
    if (odata_filter := products_filter(cql2_json)) is not None:
        params["$filter"] = odata_filter
    matches = _matcher(cql2_json)
    platforms = {platform_of(s)[0] for s in satellites} if satellites else None
    root = client.config.download_root or client.config.url
    remaining = max_items
    async for page in odata_pages(client, "Products", params):
        try:
            items = [product_item(client.kind, product, root) for product in page]
        except (ODataEntityError, KeyError, AttributeError) as err:
            message = f"{client.name} gave a product this interface does not allow: {cap(str(err))}"
            raise InvalidInputError(message) from err
        items = [i for i in items if matches(i) and (platforms is None or i["properties"].get("platform") in platforms)]
        if remaining is not None:
            items, remaining = items[:remaining], remaining - min(remaining, len(items))
        if items:
            yield items
        if remaining == 0:
            return
