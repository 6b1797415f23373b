"""The OData side of a station: `/oauth2/token`, entity-set listings and `$value` downloads."""

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from rs_simulator.catalogue import Catalogue, ChunkFile, Downloadable, Product, Session
from rs_simulator.content import Content, ensure_md5
from rs_simulator.downloads import DownloadResponse, head_response, parse_range
from rs_simulator.errors import SimulatorError
from rs_simulator.faults import DownloadFault
from rs_simulator.odata_query import QueryOptions, apply_options, parse_options
from rs_simulator.profiles import StationProfile
from rs_simulator.query_cache import QueryCache
from rs_simulator.state import SimulatorState
from rs_simulator.stations import StationName

SESSION_FIELDS = frozenset(
    [
        "Id",
        "SessionId",
        "NumChannels",
        "PublicationDate",
        "Satellite",
        "StationUnitId",
        "DownlinkOrbit",
        "AcquisitionId",
        "AntennaId",
        "FrontEndId",
        "Retransfer",
        "AntennaStatusOK",
        "FrontEndStatusOK",
        "PlannedDataStart",
        "PlannedDataStop",
        "DownlinkStart",
        "DownlinkStop",
        "DownlinkStatusOK",
        "DeliveryPushOK",
    ]
)
FILE_FIELDS = frozenset(
    [
        "Id",
        "Name",
        "SessionId",
        "Channel",
        "BlockNumber",
        "FinalBlock",
        "PublicationDate",
        "EvictionDate",
        "Size",
        "Retransfer",
    ]
)
PRODUCT_FIELDS = frozenset(
    [
        "Id",
        "Name",
        "ContentType",
        "ContentLength",
        "OriginDate",
        "PublicationDate",
        "EvictionDate",
        "ContentDate/Start",
        "ContentDate/End",
        "Attributes",
    ]
)
PRIP_FIELDS = PRODUCT_FIELDS | {"ModificationDate", "Online", "GeoFootprint"}


@dataclass(frozen=True)
class EntitySet:
    """How one OData entity set is listed, filtered and serialised; shared by every station that has it."""

    name: str
    fields: frozenset[str]
    navigation: str | None
    entities: Callable[[Catalogue], Sequence[Any]]
    to_json: Callable[[Any, bool, bool], dict[str, Any]]
    """(entity, expanded, with_checksum) → JSON; the needed MD5s must already be known."""
    contents: Callable[[Any, bool, bool], list[Content]]
    """(entity, expanded, with_checksum) → the contents whose MD5 `to_json` will need."""
    aliases: Mapping[str, str] | None = None

    @property
    def selectable(self) -> frozenset[str]:
        top_level = {f.split("/")[0] for f in self.fields}
        return frozenset(top_level | {"Checksum"} | ({self.navigation} if self.navigation else set()))


def _file_json(chunk: ChunkFile, expanded: bool = False, with_checksum: bool = True) -> dict[str, Any]:
    return {**chunk.fields, "Checksum": chunk.checksum()} if with_checksum else dict(chunk.fields)


def _session_json(session: Session, expanded: bool, with_checksum: bool) -> dict[str, Any]:
    out = dict(session.fields)
    if expanded:
        out["Files"] = [_file_json(f) for f in session.files]
    return out


def _product_json(product: Product, expanded: bool, with_checksum: bool) -> dict[str, Any]:
    out = {k: v for k, v in product.fields.items() if expanded or k != "Attributes"}
    if with_checksum:
        out["Checksum"] = product.checksum()
    return out


def _own_content(entity: Downloadable, expanded: bool, with_checksum: bool) -> list[Content]:
    return [entity.content] if with_checksum else []


def _products_set(station: StationName, fields: frozenset[str]) -> EntitySet:
    return EntitySet(
        name="Products",
        fields=fields,
        navigation="Attributes",
        entities=lambda catalogue: catalogue.products[station],
        to_json=_product_json,
        contents=_own_content,
    )


SESSIONS = EntitySet(
    name="Sessions",
    fields=SESSION_FIELDS,
    navigation="Files",
    entities=lambda catalogue: catalogue.sessions,
    to_json=_session_json,
    contents=lambda s, expanded, _: [f.content for f in s.files] if expanded else [],
)
FILES = EntitySet(
    name="Files",
    fields=FILE_FIELDS,
    navigation=None,
    entities=lambda catalogue: catalogue.files,
    to_json=_file_json,
    contents=_own_content,
    aliases={"SessionID": "SessionId"},  # RS clients filter Files on `SessionID`
)

ENTITY_SETS: dict[StationName, tuple[EntitySet, ...]] = {
    StationName.CADIP: (SESSIONS, FILES),
    StationName.AUXIP: (_products_set(StationName.AUXIP, PRODUCT_FIELDS),),
    StationName.PRIP: (_products_set(StationName.PRIP, PRIP_FIELDS),),
}
DOWNLOAD_SET = {StationName.CADIP: "Files", StationName.AUXIP: "Products", StationName.PRIP: "Products"}


async def _form(request: Request) -> dict[str, str]:
    """The token request's fields: form-encoded as OAuth2 wants, JSON accepted too."""
    body = (await request.body()).decode("utf-8", errors="replace")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(body or "{}")
        except json.JSONDecodeError:
            raise SimulatorError(400, "token request body is not JSON") from None
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return dict(parse_qsl(body))


def odata_router(state: SimulatorState, station: str) -> APIRouter:
    """Routes of a named station's OData service root (mounted under `/{station}`), as its profile says."""
    router = APIRouter()
    tokens = state.tokens[station]
    profile = state.profiles[station]
    kind = profile.kind

    def require_token(request: Request) -> None:
        tokens.check(request.headers.get("authorization"))

    authenticated = [Depends(require_token)]

    @router.post("/oauth2/token", name=f"{station}_token")
    async def token(request: Request) -> dict[str, Any]:
        return tokens.token_request(await _form(request))

    @router.get("/", name=f"{station}_service_document", dependencies=authenticated)
    async def service_document() -> dict[str, Any]:
        names = [s.name for s in ENTITY_SETS[kind]]
        return {"@odata.context": "$metadata", "value": [{"name": n, "kind": "EntitySet", "url": n} for n in names]}

    for entity_set in ENTITY_SETS[kind]:
        router.add_api_route(
            f"/{entity_set.name}",
            _listing_endpoint(state, entity_set, profile),
            methods=["GET"],
            name=f"{station}_{entity_set.name.lower()}",
            dependencies=authenticated,
        )

    entity_set_name = DOWNLOAD_SET[kind]

    def lookup(entity_id: str) -> Downloadable:
        entity = state.catalogue.downloadable(kind, entity_id.strip("'"))
        if entity is None:
            raise SimulatorError(404, f"{entity_set_name}({entity_id}) not found")
        return entity

    async def download(request: Request, entity_id: str) -> Response:
        entity = lookup(entity_id)
        byte_range = parse_range(request.headers.get("range"), entity.content.size)
        if request.method == "HEAD":
            return head_response(entity.content, byte_range)
        start, end = byte_range or (0, entity.content.size)
        return DownloadResponse(
            entity.content,
            start,
            end,
            partial=byte_range is not None,
            stats=state.stats[station],
            fault=_download_fault(state, station),
            rng=state.faults.rng(station),
        )

    async def value(request: Request, entity_id: str) -> Response:
        if state.settings.redirect_downloads or profile.redirect_host:
            lookup(entity_id)  # a 404 is answered here, not after the redirect
            # Like the RS CADIP mock (and the NSG station): 307 keeps the method, clients re-send auth.
            base = request.base_url
            if profile.redirect_host:  # a second host (a download server), which wants the token too
                base = base.replace(
                    netloc=f"{profile.redirect_host}:{base.port}" if base.port else profile.redirect_host
                )
            target = f"{base}{station}/Redirect/{entity_set_name}({entity_id})/$value"
            return RedirectResponse(target, status_code=307)
        return await download(request, entity_id)

    router.add_api_route(
        f"/{entity_set_name}({{entity_id}})/$value",
        value,
        methods=["GET", "HEAD"],
        name=f"{station}_value",
        dependencies=authenticated,
    )
    router.add_api_route(
        f"/Redirect/{entity_set_name}({{entity_id}})/$value",
        download,
        methods=["GET", "HEAD"],
        name=f"{station}_redirected_value",
        dependencies=authenticated,
    )
    return router


def _download_fault(state: SimulatorState, station: str) -> DownloadFault:
    fault = state.faults.draw_download_fault(station)
    if fault is not DownloadFault.NONE:
        state.stats[station].fault(str(fault))
    return fault


def _listing_endpoint(state: SimulatorState, entity_set: EntitySet, profile: StationProfile) -> Callable[..., Any]:
    cache: QueryCache[Any] = QueryCache()

    async def listing(request: Request) -> JSONResponse:
        options = parse_options(
            request.query_params,
            entity_set.fields,
            entity_set.aliases or {},
            entity_set.navigation,
            entity_set.selectable,
        )
        if entity_set is SESSIONS and not profile.expand_files:
            options = replace(options, expand=False)  # silently, as a station that does not expand does
        options, next_offset = _server_page(request, options, profile.page_size)
        page, matched = apply_options(entity_set.entities(state.catalogue), options, lambda e: e.fields, cache)
        with_checksum = profile.checksums and (options.select is None or "Checksum" in options.select)
        await ensure_md5(c for e in page for c in entity_set.contents(e, options.expand, with_checksum))
        values = [entity_set.to_json(e, options.expand, with_checksum) for e in page]
        if options.select is not None:
            keep = options.select | ({entity_set.navigation} if options.expand else set())
            values = [{k: v for k, v in value.items() if k in keep} for value in values]
        if profile.sizes_as_strings:
            values = [_sizes_as_strings(value) for value in values]
        body: dict[str, Any] = {"@odata.context": f"$metadata#{entity_set.name}"}
        if options.count:
            body["@odata.count"] = matched
        body["value"] = values
        if next_offset is not None and next_offset < matched:
            body["@odata.nextLink"] = str(request.url.include_query_params(**{"$skiptoken": next_offset}))
        return JSONResponse(body)

    return listing


def _server_page(request: Request, options: QueryOptions, page_size: int | None) -> tuple[QueryOptions, int | None]:
    """The options of this response under server-driven paging, and where the next response starts.

    `$skiptoken` (only ever taken from our own `@odata.nextLink`) is the absolute offset reached; the client's
    `$skip` and `$top` still bound the whole result, so following every next link gives exactly what they ask.
    """
    if page_size is None:
        return options, None
    raw = request.query_params.get("$skiptoken")
    try:
        offset = int(raw) if raw is not None else options.skip
    except ValueError:
        raise SimulatorError(400, f"invalid $skiptoken {raw!r}") from None
    end = options.skip + options.top
    if not options.skip <= offset <= end:
        raise SimulatorError(400, f"invalid $skiptoken {raw!r}")
    top = min(page_size, end - offset)
    return replace(options, skip=offset, top=top), (offset + top if offset + top < end else None)


def _sizes_as_strings(value: dict[str, Any]) -> dict[str, Any]:
    out = {k: str(v) if k in ("Size", "ContentLength") and isinstance(v, int) else v for k, v in value.items()}
    if isinstance(out.get("Files"), list):
        out["Files"] = [_sizes_as_strings(f) for f in out["Files"]]
    return out
