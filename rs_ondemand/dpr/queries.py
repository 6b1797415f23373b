"""ADF searches: a task-table query turned into a standard STAC search body, and the ADF collection rule."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from copy import deepcopy
from datetime import timedelta
from typing import Any

from rs_ondemand.cql2_check import Cql2Error, check_cql2
from rs_ondemand.dpr.tasktable import TaskTableError
from rs_ondemand.dpr.variables import EXTERNAL_VARIABLE
from rs_ondemand.errors import InvalidInputError, cap
from rs_ondemand.models.timewindow import strftime_millis, to_utc

PLACEHOLDER = re.compile(r"^\{(.*)\}$")
"""A query placeholder is a string that is exactly `{var}` (the original's `build_cql2_json`)."""

_DETAIL_LIMIT = 400
"""Query fragments quoted in errors stay short: error text ends up in workflow histories."""


class QueryError(TaskTableError):
    """An ADF query cannot be turned into a valid STAC search (unknown query, missing value, bad filter)."""


class AuxCollectionError(InvalidInputError, ValueError):
    """No catalog collection can be chosen for an ADF product type (docs/rs-compatibility.md#adf-collection)."""


def stac_query(
    tasktable: Mapping[str, Any], query_name: str, parameters: Mapping[str, Any], *, adf: str | None = None
) -> dict[str, Any]:
    """The STAC search body (`{filter, sortby, limit}`) of the query `query_name` with `parameters` filled in.

    As the original `build_cql2_json` (docs/rs-compatibility.md#adf-queries): the last query of that name is deep-copied
    and every string that is exactly `{var}` becomes `parameters[var]`, keeping its type. Then, unlike the original, the
    result is made standard CQL2-JSON: the task tables' datetime arithmetic `{"op": "-"|"+", "args": ["<ISO datetime>",
    <seconds>]}` (docs/rs-compatibility.md#q6) is folded into a plain `2023-10-03T09:00:00.000Z` timestamp, and the
    filter is validated with the `cql2` library.

    Args:
        tasktable: the task table holding `queries`.
        query_name: the `name` of an alternative's `query`.
        parameters: the alternative's `query.parameters`, external variables already substituted; a None value
            counts as missing.
        adf: the ADF's name, quoted in errors.

    Raises:
        QueryError: the query is unknown, a placeholder has no value, the arithmetic is malformed, or the filter
            is not valid CQL2-JSON.
    """
    where = f'ADF "{adf}", query "{query_name}"' if adf else f'Query "{query_name}"'
    query = _find_query(tasktable, query_name, where)
    if not isinstance(query.get("stac"), dict):
        raise QueryError(f'{where}: the query has no "stac" object.')
    values = {key: value for key, value in parameters.items() if value is not None}
    stac = _fill(deepcopy(query["stac"]), values)

    leftovers = sorted(set(_placeholders(stac)))
    if leftovers:
        given = ", ".join(f'"{key}"' for key in values) or "none"
        raise QueryError(f"{where}: no value for {', '.join(leftovers)} (parameters given: {given}).")

    folded: dict[str, Any] = _fold(stac, where)
    if "filter" in folded:
        _validate(folded["filter"], where)
    return folded


def filled_query(tasktable: Mapping[str, Any], query_name: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The query's `stac` with the parameters that have a value filled in, nothing checked: what a plan made
    without the catalog shows for an alternative whose parameters wait for an input product's properties."""
    query = _find_query(tasktable, query_name, f'Query "{query_name}"')
    stac = query.get("stac")
    values = {key: value for key, value in parameters.items() if value is not None}
    return _fill(deepcopy(stac), values) if isinstance(stac, dict) else {}


def aux_collection(product_type: str | None, aux_map: Mapping[str, str], satellite: str | None) -> str:
    """The catalog collection an ADF of `product_type` is staged into (docs/rs-compatibility.md#adf-collection).

    `aux_map[product_type]`, else `aux_map["*"]`, else `<satellite>-aux-<product_type>`. The original wrote
    `None-aux-...` when the satellite was unset (docs/rs-compatibility.md#q13): that case is an error here.

    Raises:
        AuxCollectionError: neither the map nor the satellite gives a collection.
    """
    key = product_type or "*"
    if key in aux_map:
        return aux_map[key]
    if "*" in aux_map:
        return aux_map["*"]
    if not product_type:
        raise AuxCollectionError('No ADF collection for a query without "product_type": the map has no "*" entry.')
    if not satellite:
        raise AuxCollectionError(
            f'No ADF collection for product type "{product_type}": it is not in auxiliary_product_to_collection_'
            'identifier, which has no "*" entry, and no satellite is given to derive "<satellite>-aux-<type>".'
        )
    return f"{satellite}-aux-{product_type}"


def _find_query(tasktable: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    queries = tasktable.get("queries")
    if not isinstance(queries, list):
        raise QueryError(f'{where}: the task table has no "queries" list.')
    named = [q for q in queries if isinstance(q, dict) and isinstance(q.get("name"), str)]
    # The last query of that name wins, as in the original.
    found = next((q for q in reversed(named) if q["name"] == name), None)
    if found is None:
        available = ", ".join(f'"{q["name"]}"' for q in named) or '"<none>"'
        raise QueryError(f"{where}: not found in the task table. Available queries: {available}.")
    return found


def _fill(obj: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(obj, dict):
        return {key: _fill(value, values) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_fill(value, values) for value in obj]
    if isinstance(obj, str):
        match = PLACEHOLDER.match(obj)
        return values.get(match.group(1), obj) if match else obj
    return obj


def _placeholders(obj: Any) -> list[str]:
    """Strings still waiting for a value: `{var}` and `{external_variable.X}` (an external variable not given)."""
    if isinstance(obj, dict):
        return [found for value in obj.values() for found in _placeholders(value)]
    if isinstance(obj, list):
        return [found for value in obj for found in _placeholders(value)]
    if isinstance(obj, str):
        found = [f'"{m.group(0)}"' for m in EXTERNAL_VARIABLE.finditer(obj)]
        return found or ([f'"{obj}"'] if PLACEHOLDER.match(obj) else [])
    return []


def _fold(obj: Any, where: str) -> Any:
    """Fold `{"op": "+"|"-", "args": [<datetime>, <seconds>]}` into a timestamp, innermost first."""
    if isinstance(obj, list):
        return [_fold(value, where) for value in obj]
    if not isinstance(obj, dict):
        return obj
    obj = {key: _fold(value, where) for key, value in obj.items()}
    args = obj.get("args")
    # Numeric arithmetic on properties is standard CQL2 and stays; only arithmetic on a datetime is ours.
    if obj.get("op") not in ("+", "-") or not isinstance(args, list) or not any(map(_is_instant, args)):
        return obj
    if len(args) != 2 or not _is_instant(args[0]) or not _is_seconds(args[1]):
        raise QueryError(f'{where}: cannot evaluate {_quote(obj)}: expected "args": [<ISO 8601 datetime>, <seconds>].')
    text = args[0]["timestamp"] if isinstance(args[0], dict) else args[0]
    try:
        moment = to_utc(text)
        offset = timedelta(seconds=args[1])
        result = strftime_millis(moment + offset if obj["op"] == "+" else moment - offset)
    except (ValueError, TypeError, OverflowError) as err:
        raise QueryError(f"{where}: cannot evaluate {_quote(obj)}: {err}") from err
    return {"timestamp": result} if isinstance(args[0], dict) else result


def _is_instant(value: Any) -> bool:
    """A datetime operand: a plain string (as the task tables write it) or a CQL2 `{"timestamp": ...}`."""
    return isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("timestamp"), str))


def _is_seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _validate(cql2_filter: Any, where: str) -> None:
    try:
        check_cql2(cql2_filter)
    except Cql2Error as err:
        dialect = "CQL2-text" if isinstance(cql2_filter, str) else "CQL2-JSON"
        raise QueryError(f"{where}: the filter is not valid {dialect}: {cap(str(err), _DETAIL_LIMIT)}") from err


def _quote(obj: Any) -> str:
    return cap(json.dumps(obj, separators=(",", ":")), _DETAIL_LIMIT)
