"""OData system query options (`$filter $orderby $top $skip $count $expand $select`) applied to entity lists."""

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rs_simulator.dates import looks_like_datetime, parse_datetime
from rs_simulator.errors import SimulatorError
from rs_simulator.odata_eval import evaluate
from rs_simulator.odata_filter import Node, ODataFilterError, parse_filter
from rs_simulator.query_cache import QueryCache

DEFAULT_TOP = 1000  # the RS mocks' default page size


@dataclass(frozen=True)
class QueryOptions:
    filter: Node | None
    orderby: tuple[tuple[tuple[str, ...], bool], ...]  # (path, descending)
    top: int
    skip: int
    count: bool
    expand: bool
    select: frozenset[str] | None


def _option(params: Mapping[str, str], name: str) -> str | None:
    # `$filter` is the standard spelling; some clients drop the `$`.
    return params.get(f"${name}", params.get(name))


def _non_negative(params: Mapping[str, str], name: str, default: int) -> int:
    raw = _option(params, name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SimulatorError(400, f"${name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise SimulatorError(400, f"${name} must not be negative, got {value}")
    return value


def parse_options(
    params: Mapping[str, str],
    fields: Collection[str],
    aliases: Mapping[str, str],
    navigation: str | None,
    selectable: Collection[str],
) -> QueryOptions:
    """Read the query options of a collection request.

    Args:
        params: the request's query parameters.
        fields: filterable/orderable paths of the entity set (`ContentDate/Start`).
        aliases: other spellings of fields (`SessionID` → `SessionId`).
        navigation: the one expandable property (`Files`, `Attributes`) or None.
        selectable: top-level names `$select` may list.

    Raises:
        SimulatorError: 400 on any option the simulator cannot honour, naming it.
    """
    text = _option(params, "filter")
    try:
        node = parse_filter(text, fields, aliases) if text and text.strip() else None
    except ODataFilterError as error:
        raise SimulatorError(400, str(error)) from None

    orderby = []
    for clause in filter(None, (c.strip() for c in (_option(params, "orderby") or "").split(","))):
        name, _, direction = clause.partition(" ")
        name = aliases.get(name, name)
        direction = direction.strip().lower() or "asc"
        if name not in fields or name == navigation or direction not in ("asc", "desc"):
            raise SimulatorError(400, f"cannot order by {clause!r}")
        orderby.append((tuple(name.split("/")), direction == "desc"))

    expand = False
    for name in filter(None, (n.strip() for n in (_option(params, "expand") or "").split(","))):
        if navigation is None or name.lower() != navigation.lower():
            raise SimulatorError(400, f"cannot expand {name!r}")
        expand = True

    select = None
    raw_select = _option(params, "select")
    if raw_select:
        select = frozenset(s.strip() for s in raw_select.split(",") if s.strip())
        unknown = sorted(select - set(selectable))
        if unknown:
            raise SimulatorError(400, f"cannot select {', '.join(unknown)}")

    count = (_option(params, "count") or "false").lower()
    if count not in ("true", "false"):
        raise SimulatorError(400, f"$count must be true or false, got {count!r}")
    return QueryOptions(
        filter=node,
        orderby=tuple(orderby),
        top=_non_negative(params, "top", DEFAULT_TOP),
        skip=_non_negative(params, "skip", 0),
        count=count == "true",
        expand=expand,
        select=select,
    )


def sort_key(value: Any) -> tuple[int, int, Any]:
    """Order values of one field: nulls last, ISO strings as datetimes (formats differ in the real data)."""
    if value is None:
        return (1, 0, 0)
    if isinstance(value, bool | int | float):
        return (0, 0, value)
    if isinstance(value, str) and looks_like_datetime(value):
        return (0, 1, parse_datetime(value))
    if isinstance(value, datetime):
        return (0, 1, value)
    return (0, 2, str(value))


def _lookup(fields: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = fields
    for segment in path:
        value = value.get(segment) if isinstance(value, Mapping) else None
    return value


def _matched[T](entities: Sequence[T], options: QueryOptions, fields_of: Callable[[T], Mapping[str, Any]]) -> list[T]:
    """The entities the filter keeps, in the requested order."""
    matched = [e for e in entities if options.filter is None or evaluate(options.filter, fields_of(e))]
    # Stable sorts from the last key to the first give a multi-key order with mixed directions.
    for path, descending in reversed(options.orderby):

        def key(entity: T, path: tuple[str, ...] = path) -> tuple[int, int, Any]:
            return sort_key(_lookup(fields_of(entity), path))

        matched.sort(key=key, reverse=descending)
    return matched


def apply_options[T](
    entities: Sequence[T],
    options: QueryOptions,
    fields_of: Callable[[T], Mapping[str, Any]],
    cache: QueryCache[T] | None = None,
) -> tuple[list[T], int]:
    """Filter, order and page `entities`; returns the page and the number matched before paging."""
    if cache is None:
        matched = _matched(entities, options, fields_of)
    else:
        query = (options.filter, options.orderby)
        matched = cache.result(query, len(entities), lambda: _matched(entities, options, fields_of))
    return matched[options.skip : options.skip + options.top], len(matched)
