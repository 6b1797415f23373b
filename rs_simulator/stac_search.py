"""STAC item search over a station's entities: ids, collections, datetime, bbox, CQL2 filter, sort, paging."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import cql2

from rs_simulator.dates import iso_ms, looks_like_datetime, parse_datetime
from rs_simulator.errors import StacError
from rs_simulator.odata_query import sort_key
from rs_simulator.query_cache import QueryCache
from rs_simulator.stac_mapping import ItemCore, StacMapping
from rs_simulator.stations import collection_ids, in_collection

DEFAULT_LIMIT = 10
TOKEN_PREFIX = "next:"
DEFAULT_SORT = (("datetime", True),)  # newest first, as stac-fastapi-pgstac


@dataclass(frozen=True)
class SearchRequest:
    ids: tuple[str, ...] | None = None
    collections: tuple[str, ...] | None = None
    interval: tuple[datetime | None, datetime | None] | None = None
    bbox: tuple[float, float, float, float] | None = None
    filter: cql2.Expr | None = None
    sortby: tuple[tuple[str, bool], ...] = DEFAULT_SORT  # (field, descending)
    limit: int = DEFAULT_LIMIT
    offset: int = 0


@dataclass(frozen=True)
class Hit:
    record: Any
    core: ItemCore
    collection: str


# -------------------------------------------------------------------------------------------- parsing


def _split(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(p.strip() for p in parts if p and p.strip())


def parse_interval(value: str | None) -> tuple[datetime | None, datetime | None] | None:
    """`a/b`, `../b`, `a/..`, `a/` or a single instant; raises StacError 400."""
    if not value:
        return None
    try:
        if "/" not in value:
            instant = parse_datetime(value)
            return instant, instant
        start, end = value.split("/", 1)
        return (
            None if start in ("", "..") else parse_datetime(start),
            None if end in ("", "..") else parse_datetime(end),
        )
    except ValueError:
        raise StacError(400, f"invalid datetime {value!r}") from None


def parse_sortby(value: str | Sequence[Any] | None) -> tuple[tuple[str, bool], ...]:
    """`-created,+datetime` (GET) or `[{"field": ..., "direction": ...}]` (POST)."""
    if not value:
        return DEFAULT_SORT
    clauses: list[tuple[str, bool]] = []
    for part in value.split(",") if isinstance(value, str) else value:
        if isinstance(part, Mapping):
            field, direction = str(part.get("field", "")), str(part.get("direction", "asc")).lower()
            if direction not in ("asc", "desc"):
                raise StacError(400, f"invalid sort direction {direction!r}")
            descending = direction == "desc"
        else:
            text = str(part).strip()
            descending = text.startswith("-")
            field = text.lstrip("+- ")
        if not field:
            raise StacError(400, f"invalid sortby {value!r}")
        clauses.append((field.removeprefix("properties."), descending))
    return tuple(clauses)


def _shift(value: Any, seconds: float) -> Any:
    """`value` (a timestamp string or `{"timestamp": ...}`) moved by `seconds`, in the same form."""
    text = value["timestamp"] if isinstance(value, Mapping) else value
    shifted = iso_ms(parse_datetime(text) + timedelta(seconds=seconds))
    return {"timestamp": shifted} if isinstance(value, Mapping) else shifted


def _is_timestamp(value: Any) -> bool:
    if isinstance(value, Mapping) and set(value) == {"timestamp"}:
        value = value["timestamp"]
    return isinstance(value, str) and looks_like_datetime(value)


def reduce_time_arithmetic(node: Any) -> Any:
    """Fold `{"op": "-"|"+", "args": [<timestamp>, <seconds>]}` into a timestamp.

    The RS task tables' LatestValCover query widens its interval that way (`start - dTa`), which rs-server
    accepts but the cql2 evaluator does not.
    """
    if isinstance(node, list):
        return [reduce_time_arithmetic(n) for n in node]
    if not isinstance(node, Mapping):
        return node
    node = {k: reduce_time_arithmetic(v) for k, v in node.items()}
    args = node.get("args")
    if node.get("op") in ("+", "-") and isinstance(args, list) and len(args) == 2:
        value, seconds = args
        if _is_timestamp(value) and isinstance(seconds, int | float) and not isinstance(seconds, bool):
            return _shift(value, seconds if node["op"] == "+" else -seconds)
    return node


def parse_filter(value: Any, lang: str | None) -> cql2.Expr | None:
    """A CQL2 filter given as JSON (dict or string) or cql2-text; raises StacError 400."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if lang == "cql2-json" or text.startswith("{") else cql2.parse_text(text).to_json()
        if not isinstance(value, Mapping):
            raise StacError(400, "filter must be a CQL2 JSON object")
        return cql2.Expr(reduce_time_arithmetic(value))
    except StacError:
        raise
    except Exception as error:  # cql2 raises plain Exception / ValueError subclasses
        raise StacError(400, f"invalid filter: {error}") from None


def _limit(value: Any, page_size_max: int) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise StacError(400, f"invalid limit {value!r}") from None
    if limit < 1:
        raise StacError(400, f"limit must be at least 1, got {limit}")
    return min(limit, page_size_max)


def _offset(token: Any) -> int:
    if token is None or token == "":
        return 0
    text = str(token)
    if text.startswith(TOKEN_PREFIX) and text[len(TOKEN_PREFIX) :].isdigit():
        return int(text[len(TOKEN_PREFIX) :])
    raise StacError(400, f"invalid paging token {text!r}")


def _bbox(value: str | Sequence[Any] | None) -> tuple[float, float, float, float] | None:
    if value is None or value == "" or value == []:
        return None
    parts = value.split(",") if isinstance(value, str) else value
    try:
        numbers = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise StacError(400, f"invalid bbox {value!r}") from None
    if len(numbers) == 6:  # 3D: drop the heights
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4:
        raise StacError(400, f"invalid bbox {value!r}")
    return numbers[0], numbers[1], numbers[2], numbers[3]


def parse_search(params: Mapping[str, Any], page_size_max: int) -> SearchRequest:
    """A search from GET query parameters or a POST body (both spellings of `filter-lang` accepted)."""
    if params.get("intersects") or params.get("query"):
        raise StacError(400, "intersects and query are not supported; use bbox or a CQL2 filter")
    lang = params.get("filter-lang") or params.get("filter_lang")
    if lang not in (None, "cql2-json", "cql2-text"):
        raise StacError(400, f"unsupported filter-lang {lang!r}")
    return SearchRequest(
        ids=_split(params.get("ids")),
        collections=_split(params.get("collections")),
        interval=parse_interval(params.get("datetime")),
        bbox=_bbox(params.get("bbox")),
        filter=parse_filter(params.get("filter"), lang),
        sortby=parse_sortby(params.get("sortby")),
        limit=_limit(params.get("limit"), page_size_max),
        offset=_offset(params.get("token")),
    )


# ------------------------------------------------------------------------------------------ evaluation


def _in_interval(core: ItemCore, interval: tuple[datetime | None, datetime | None]) -> bool:
    props = core.properties
    start = props.get("start_datetime") or props.get("datetime")
    end = props.get("end_datetime") or props.get("datetime")
    if start is None or end is None:
        return False
    low, high = interval
    return (high is None or parse_datetime(start) <= high) and (low is None or parse_datetime(end) >= low)


def _in_bbox(core: ItemCore, bbox: tuple[float, float, float, float]) -> bool:
    box = core.bbox
    return box is not None and not (box[2] < bbox[0] or box[0] > bbox[2] or box[3] < bbox[1] or box[1] > bbox[3])


def _matches(expr: cql2.Expr, core: ItemCore, collection: str) -> bool:
    item = {"type": "Feature", "id": core.id, "collection": collection, "geometry": core.geometry}
    item["properties"] = core.properties
    try:
        return bool(expr.matches(item))
    except Exception:
        # cql2 cannot reduce a comparison with a property the item lacks: such an item does not match.
        return False


def _sort_value(hit: Hit, field: str) -> Any:
    if field == "id":
        return hit.core.id
    if field == "collection":
        return hit.collection
    return hit.core.properties.get(field)


def search(
    mapping: StacMapping, records: Sequence[Any], request: SearchRequest, cache: QueryCache[Hit] | None = None
) -> tuple[list[Hit], int]:
    """The page of hits asked for, and how many matched in all."""
    if cache is None:
        hits = _hits(mapping, records, request)
    else:
        query = (
            request.ids,
            request.collections,
            request.interval,
            request.bbox,
            request.filter.to_text() if request.filter is not None else None,
            request.sortby,
        )
        hits = cache.result(query, len(records), lambda: _hits(mapping, records, request))
    return hits[request.offset : request.offset + request.limit], len(hits)


def _hits(mapping: StacMapping, records: Sequence[Any], request: SearchRequest) -> list[Hit]:
    """Every hit of the search, in its order."""
    known = collection_ids(mapping.station)
    wanted = request.collections or (str(mapping.station),)
    hits = []
    for record in records:
        core = mapping.core(record)
        # An item is reported in the first requested collection it belongs to.
        collection = next((c for c in wanted if c in known and in_collection(mapping.station, c, core.satellite)), None)
        if collection is None:
            continue
        if request.ids is not None and core.id not in request.ids:
            continue
        if request.interval is not None and not _in_interval(core, request.interval):
            continue
        if request.bbox is not None and not _in_bbox(core, request.bbox):
            continue
        if request.filter is not None and not _matches(request.filter, core, collection):
            continue
        hits.append(Hit(record, core, collection))
    # Stable sorts, last key first; the id tie-breaker keeps pages disjoint across requests.
    hits.sort(key=lambda h: h.core.id)
    for field, descending in reversed(request.sortby):

        def key(hit: Hit, field: str = field) -> tuple[int, int, Any]:
            return sort_key(_sort_value(hit, field))

        hits.sort(key=key, reverse=descending)
    return hits


def next_token(request: SearchRequest, returned: int, matched: int) -> str | None:
    following = request.offset + returned
    return f"{TOKEN_PREFIX}{following}" if returned and following < matched else None
