"""Evaluation of a parsed OData `$filter` (`odata_filter.parse_filter`) over entity dicts."""

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from rs_simulator.dates import looks_like_datetime, parse_datetime
from rs_simulator.odata_filter import (
    BoolOp,
    Call,
    Compare,
    Field,
    In,
    Intersects,
    Lambda,
    Literal,
    Node,
    Not,
    ODataFilterError,
    bounding_box,
)


def _geojson_points(geometry: Mapping[str, Any]) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []

    def walk(value: Any) -> None:
        if isinstance(value, list | tuple) and len(value) >= 2 and all(isinstance(v, int | float) for v in value):
            points.append((float(value[0]), float(value[1])))
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    walk(geometry.get("coordinates", []))
    return points


def _coerce(left: Any, right: Any) -> tuple[Any, Any]:
    """Bring two operands to comparable types: entity datetimes are ISO strings, literals are datetimes."""
    if isinstance(left, str) and isinstance(right, str) and looks_like_datetime(left) and looks_like_datetime(right):
        # A quoted datetime literal: compare instants, not spellings (`…:40Z` vs `…:40.500Z`).
        return parse_datetime(left), parse_datetime(right)
    if isinstance(left, datetime) and isinstance(right, str) and looks_like_datetime(right):
        return left, parse_datetime(right)
    if isinstance(right, datetime) and isinstance(left, str) and looks_like_datetime(left):
        return parse_datetime(left), right
    if isinstance(left, str) and isinstance(right, int | float) and not isinstance(right, bool):
        try:
            return float(left), right
        except ValueError:
            return left, str(right)
    if isinstance(right, str) and isinstance(left, int | float) and not isinstance(left, bool):
        right, left = _coerce(right, left)
    return left, right


_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


def _compare(op: str, left: Any, right: Any) -> bool:
    left, right = _coerce(left, right)
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        return _ORDERINGS[op](left, right)
    except TypeError:
        return False


def _lookup(value: Any, path: tuple[str, ...]) -> Any:
    for segment in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(segment)
    return value


def evaluate(node: Node, entity: Mapping[str, Any], scope: Mapping[str, Any] | None = None) -> Any:
    """The value of `node` for `entity` (a bool for a whole filter); `scope` binds lambda variables."""
    scope = scope or {}
    match node:
        case Literal(value):
            return value
        case Field(path, None):
            return _lookup(entity, path)
        case Field(path, str() as variable):
            return _lookup(scope.get(variable), path)
        case Compare(op, left, right):
            return _compare(op, evaluate(left, entity, scope), evaluate(right, entity, scope))
        case In(left, values):
            value = evaluate(left, entity, scope)
            return any(_compare("eq", value, evaluate(v, entity, scope)) for v in values)
        case BoolOp("and", left, right):
            return bool(evaluate(left, entity, scope)) and bool(evaluate(right, entity, scope))
        case BoolOp(_, left, right):
            return bool(evaluate(left, entity, scope)) or bool(evaluate(right, entity, scope))
        case Not(operand):
            return not evaluate(operand, entity, scope)
        case Call(name, args):
            return _call(name, [evaluate(a, entity, scope) for a in args])
        case Lambda(quantifier, collection, item_type, variable, body):
            items = [
                item
                for item in _lookup(entity, collection) or []
                if item_type is None or item.get("@odata.type") == item_type
            ]
            results = (bool(evaluate(body, entity, {**scope, variable: item})) for item in items)
            return any(results) if quantifier == "any" else all(results)
        case Intersects(area):
            points = _geojson_points(entity.get("GeoFootprint") or {})
            if not points:
                return False
            # Bounding-box overlap: good enough for test footprints, which are rectangles.
            x0, y0, x1, y1 = bounding_box(points)
            return not (x1 < area[0] or x0 > area[2] or y1 < area[1] or y0 > area[3])
    raise ODataFilterError(f"cannot evaluate {node!r}")  # pragma: no cover - the parser builds only the above


def _call(name: str, args: list[Any]) -> Any:
    if name in ("tolower", "toupper"):
        if len(args) != 1:
            raise ODataFilterError(f"{name}() takes one argument")
        value = args[0]
        if not isinstance(value, str):
            return value
        return value.lower() if name == "tolower" else value.upper()
    if len(args) != 2:
        raise ODataFilterError(f"{name}() takes two arguments")
    haystack, needle = args
    if not isinstance(haystack, str) or not isinstance(needle, str):
        return False
    if name == "contains":
        return needle in haystack
    if name == "startswith":
        return haystack.startswith(needle)
    return haystack.endswith(needle)
