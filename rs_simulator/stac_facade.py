"""The STAC API facade of a station (`/{station}/stac`): landing page, collections, items and search."""

import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from rs_simulator.content import ensure_md5
from rs_simulator.errors import StacError
from rs_simulator.query_cache import QueryCache
from rs_simulator.stac_mapping import MAPPINGS, STAC_VERSION, full_item
from rs_simulator.stac_search import Hit, SearchRequest, next_token, parse_search, search
from rs_simulator.state import SimulatorState
from rs_simulator.stations import collection_ids, in_collection

CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#filter",
    "https://api.stacspec.org/v1.0.0/item-search#sort",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
]
JSON = "application/json"
GEOJSON = "application/geo+json"


def _geojson(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, media_type=GEOJSON)


def stac_router(state: SimulatorState, station: str) -> APIRouter:
    """Routes mounted under `/{station}/stac`; open like rs-server's search (only downloads need a token).

    A named station has its kind's collections (`cadip`, `cadip_sentinel1`...); its hrefs point at its own
    OData root."""
    profile = state.profiles[station]
    kind = profile.kind
    mapping = MAPPINGS[kind]

    async def api_key(request: Request) -> None:
        given = request.headers.get("x-api-key")
        if profile.api_key is not None and not (given and secrets.compare_digest(given, profile.api_key)):
            raise StacError(401, "a valid x-api-key is required")

    router = APIRouter(dependencies=[Depends(api_key)])

    def roots(request: Request) -> tuple[str, str]:
        station_root = f"{str(request.base_url).rstrip('/')}/{station}"
        return f"{station_root}/stac", station_root

    searches: QueryCache[Hit] = QueryCache()

    def records() -> list[Any]:
        return list(mapping.records(state.catalogue))

    def collection_json(collection_id: str, stac_root: str) -> dict[str, Any]:
        cores = [mapping.core(r) for r in records()]
        members = [c for c in cores if in_collection(kind, collection_id, c.satellite)]
        starts = [c.properties["start_datetime"] for c in members]
        ends = [c.properties["end_datetime"] for c in members]
        url = f"{stac_root}/collections/{collection_id}"
        suffix = collection_id.removeprefix(f"{kind}").lstrip("_")
        return {
            "type": "Collection",
            "stac_version": STAC_VERSION,
            "stac_extensions": list(mapping.extensions),
            "id": collection_id,
            "title": f"{mapping.title}{f' ({suffix})' if suffix else ''}",
            "description": f"Simulated {mapping.title}{f' of {suffix}' if suffix else ''}.",
            "license": "other",
            "extent": {
                "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
                "temporal": {"interval": [[min(starts, default=None), max(ends, default=None)]]},
            },
            "links": [
                {"rel": "self", "href": url, "type": JSON},
                {"rel": "root", "href": stac_root, "type": JSON},
                {"rel": "parent", "href": stac_root, "type": JSON},
                {"rel": "items", "href": f"{url}/items", "type": GEOJSON},
            ],
        }

    async def feature_collection(
        request: Request, search_request: SearchRequest, post_body: dict[str, Any] | None
    ) -> JSONResponse:
        stac_root, station_root = roots(request)
        hits, matched = search(mapping, records(), search_request, searches)
        await ensure_md5(c for hit in hits for c in mapping.contents(hit.record))
        features = [_item(hit, stac_root, station_root) for hit in hits]
        links: list[dict[str, Any]] = [
            {"rel": "self", "href": str(request.url), "type": GEOJSON},
            {"rel": "root", "href": stac_root, "type": JSON},
        ]
        token = next_token(search_request, len(features), matched)
        if token is not None and post_body is None:
            next_url = str(request.url.include_query_params(token=token))
            links.append({"rel": "next", "href": next_url, "type": GEOJSON, "method": "GET"})
        elif token is not None:
            # pystac-client merges `body` into the search it sent (merge: true), keeping filter, limit...
            next_link = {"rel": "next", "href": str(request.url), "type": GEOJSON, "method": "POST"}
            links.append(next_link | {"body": {"token": token}, "merge": True})
        return _geojson(
            {
                "type": "FeatureCollection",
                "features": features,
                "links": links,
                "numberMatched": matched,
                "numberReturned": len(features),
            }
        )

    def _item(hit: Hit, stac_root: str, station_root: str) -> dict[str, Any]:
        return full_item(mapping, hit.record, hit.collection, stac_root, station_root)

    def known_collection(collection_id: str) -> None:
        if collection_id not in collection_ids(kind):
            raise StacError(404, f"collection {collection_id!r} not found")

    @router.get("", name=f"{station}_stac_landing")
    @router.get("/", include_in_schema=False)
    async def landing(request: Request) -> dict[str, Any]:
        stac_root, _ = roots(request)
        links = [
            {"rel": "self", "href": stac_root, "type": JSON},
            {"rel": "root", "href": stac_root, "type": JSON},
            {"rel": "conformance", "href": f"{stac_root}/conformance", "type": JSON},
            {"rel": "data", "href": f"{stac_root}/collections", "type": JSON},
            {"rel": "search", "href": f"{stac_root}/search", "type": GEOJSON, "method": "GET"},
            {"rel": "search", "href": f"{stac_root}/search", "type": GEOJSON, "method": "POST"},
        ]
        links += [
            {"rel": "child", "href": f"{stac_root}/collections/{c}", "type": JSON, "title": c}
            for c in collection_ids(kind)
        ]
        return {
            "type": "Catalog",
            "stac_version": STAC_VERSION,
            "id": f"{station}-simulator",
            "title": f"{mapping.title} (rs-ondemand station simulator)",
            "description": f"STAC facade over the simulated {station.upper()} OData service.",
            "conformsTo": CONFORMANCE,
            "links": links,
        }

    @router.get("/conformance", name=f"{station}_stac_conformance")
    async def conformance() -> dict[str, Any]:
        return {"conformsTo": CONFORMANCE}

    @router.get("/collections", name=f"{station}_stac_collections")
    async def collections(request: Request) -> dict[str, Any]:
        stac_root, _ = roots(request)
        return {
            "collections": [collection_json(c, stac_root) for c in collection_ids(kind)],
            "links": [
                {"rel": "self", "href": f"{stac_root}/collections", "type": JSON},
                {"rel": "root", "href": stac_root, "type": JSON},
            ],
        }

    @router.get("/collections/{collection_id}", name=f"{station}_stac_collection")
    async def collection(request: Request, collection_id: str) -> dict[str, Any]:
        known_collection(collection_id)
        return collection_json(collection_id, roots(request)[0])

    @router.get("/collections/{collection_id}/items", name=f"{station}_stac_items")
    async def items(request: Request, collection_id: str) -> JSONResponse:
        known_collection(collection_id)
        params = dict(request.query_params) | {"collections": collection_id}
        return await feature_collection(request, parse_search(params, state.settings.page_size_max), None)

    @router.get("/collections/{collection_id}/items/{item_id}", name=f"{station}_stac_item")
    async def item(request: Request, collection_id: str, item_id: str) -> JSONResponse:
        known_collection(collection_id)
        search_request = SearchRequest(ids=(item_id,), collections=(collection_id,), limit=1)
        hits, _ = search(mapping, records(), search_request)
        if not hits:
            raise StacError(404, f"item {item_id!r} not found in {collection_id!r}")
        await ensure_md5(mapping.contents(hits[0].record))
        return _geojson(_item(hits[0], *roots(request)))

    @router.get("/search", name=f"{station}_stac_search_get")
    async def search_get(request: Request) -> JSONResponse:
        search_request = parse_search(request.query_params, state.settings.page_size_max)
        return await feature_collection(request, search_request, None)

    @router.post("/search", name=f"{station}_stac_search_post")
    async def search_post(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            raise StacError(400, "search body is not JSON") from None
        if not isinstance(body, dict):
            raise StacError(400, "search body must be a JSON object")
        return await feature_collection(request, parse_search(body, state.settings.page_size_max), body)

    return router
