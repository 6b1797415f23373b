"""OData query options for the ESA station interfaces, from what the workflows ask (pure functions).

Searches arrive as STAC searches (ids, a CQL2-JSON filter, a sort). For an OData station the filter becomes an
OData `$filter` that selects at least every product the CQL2 filter selects (the parts OData can say: product
type, content dates, publication date), and the exact CQL2 filter is then applied to the mapped items, so both
APIs select the same products.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rs_ondemand.errors import InvalidInputError

STRING_ATTRIBUTE = "OData.CSC.StringAttribute"

# STAC property → the OData product property with the same meaning (our odata_stac mapping's inverse).
PRODUCT_DATES = {
    "start_datetime": "ContentDate/Start",
    "datetime": "ContentDate/Start",
    "end_datetime": "ContentDate/End",
    "created": "PublicationDate",
    "published": "PublicationDate",
}
SORTABLE = PRODUCT_DATES | {"id": "Name"}
# Temporal operators under which an item's [start_datetime, end_datetime] shares at least one instant with the
# literal interval: each implies the closed intersection, which OData can say.
_OVERLAPPING = frozenset(
    {
        "t_contains",
        "t_during",
        "t_equals",
        "t_intersects",
        "t_overlaps",
        "t_overlappedby",
        "t_starts",
        "t_startedby",
        "t_finishes",
        "t_finishedby",
        "t_meets",
        "t_metby",
    }
)
_COMPARISONS = {"=": "eq", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_MIRRORED = {"eq": "eq", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}


def literal(value: str) -> str:
    """An OData string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def odata_datetime(value: datetime) -> str:
    """An OData `DateTimeOffset` literal (unquoted, UTC, milliseconds): `2024-01-02T03:04:05.123Z`."""
    v = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}."
        f"{v.microsecond // 1000:03d}Z"
    )


def any_or(field: str, values: tuple[str, ...]) -> str:
    """`(field eq 'a' or field eq 'b')`: portable where `in` is not supported."""
    return "(" + " or ".join(f"{field} eq {literal(v)}" for v in values) + ")"


def sessions_filter(session_ids: list[str], satellites: tuple[str, ...] | None) -> str:
    clauses = [any_or("SessionId", tuple(session_ids))]
    if satellites:
        clauses.append(any_or("Satellite", satellites))
    return " and ".join(clauses)


def string_attribute(name: str, value: str) -> str:
    """The CSC attribute test: `Attributes/OData.CSC.StringAttribute/any(att:att/Name eq … and …/Value eq …)`."""
    return (
        f"Attributes/{STRING_ATTRIBUTE}/any(att:att/Name eq {literal(name)} and "
        f"att/{STRING_ATTRIBUTE}/Value eq {literal(value)})"
    )


def _timestamp(arg: Any) -> datetime | None:
    """A CQL2 temporal literal (`"2024-…Z"`, `{"timestamp": …}`, `{"date": …}`) as a datetime; None otherwise."""
    if isinstance(arg, dict) and len(arg) == 1:
        arg = arg.get("timestamp", arg.get("date"))
    if not isinstance(arg, str):
        return None
    try:
        parsed = datetime.fromisoformat(arg)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _property(arg: Any) -> str | None:
    if isinstance(arg, dict) and set(arg) == {"property"} and isinstance(arg["property"], str):
        return arg["property"].removeprefix("properties.")
    return None


def _item_interval(arg: Any) -> bool:
    """Whether `arg` is the item's validity interval `[start_datetime, end_datetime]`."""
    if not isinstance(arg, dict) or set(arg) != {"interval"}:
        return False
    bounds = [_property(b) for b in arg["interval"]] if isinstance(arg["interval"], list) else []
    return bounds == ["start_datetime", "end_datetime"]


def _literal_interval(arg: Any) -> tuple[datetime | None, datetime | None] | None:
    bounds = arg.get("interval") if isinstance(arg, dict) and set(arg) == {"interval"} else None
    if isinstance(bounds, list) and len(bounds) == 2:
        lower, upper = bounds
        return (None if lower == ".." else _timestamp(lower)), (None if upper == ".." else _timestamp(upper))
    when = _timestamp(arg)
    return (when, when) if when else None


def _clause(expression: Any) -> list[str]:
    """OData clauses implied by one CQL2 conjunct (empty when OData cannot say it: then it is checked later)."""
    if not isinstance(expression, dict):
        return []
    op, args = expression.get("op"), expression.get("args")
    if not isinstance(args, list) or len(args) != 2:
        return []
    left, right = args
    if op == "=" and _property(left) == "product:type" and isinstance(right, str):
        return [string_attribute("productType", right)]
    if op in _OVERLAPPING:
        interval = _literal_interval(right) if _item_interval(left) else None
        interval = interval or (_literal_interval(left) if _item_interval(right) else None)
        if interval is None:
            return []
        start, end = interval
        return ([f"ContentDate/Start le {odata_datetime(end)}"] if end else []) + (
            [f"ContentDate/End ge {odata_datetime(start)}"] if start else []
        )
    if op in _COMPARISONS:
        name, when, comparison = _property(left), _timestamp(right), _COMPARISONS[op]
        if name is None or when is None:
            name, when, comparison = _property(right), _timestamp(left), _MIRRORED[_COMPARISONS[op]]
        if name in PRODUCT_DATES and when is not None:
            return [f"{PRODUCT_DATES[name]} {comparison} {odata_datetime(when)}"]
    return []


def products_filter(cql2: dict[str, Any] | None) -> str | None:
    """An OData `$filter` selecting at least the products `cql2` selects (None: OData can narrow nothing)."""
    if cql2 is None:
        return None
    conjuncts = cql2["args"] if cql2.get("op") == "and" and isinstance(cql2.get("args"), list) else [cql2]
    clauses = [clause for conjunct in conjuncts for clause in _clause(conjunct)]
    return " and ".join(clauses) or None


def products_orderby(sortby: list[dict[str, str]] | None) -> str:
    """`$orderby` for a STAC `sortby` (default: newest publication first, then name, for stable pages).

    Raises:
        InvalidInputError: a field OData products cannot be ordered by.
    """
    clauses = []
    for sort in sortby or [{"field": "created", "direction": "desc"}]:
        field = str(sort.get("field", "")).removeprefix("properties.")
        if field not in SORTABLE:
            raise InvalidInputError(f"an OData station cannot sort by {field!r} (only by {', '.join(SORTABLE)})")
        clauses.append(f"{SORTABLE[field]} {'desc' if sort.get('direction') == 'desc' else 'asc'}")
    if not any(c.startswith("Name ") for c in clauses):
        clauses.append("Name asc")  # a total order: pages of an unchanged result never overlap
    return ",".join(dict.fromkeys(clauses))
