"""`{external_variable.X}` substitution in task-table values (rs-reference.md §1.4, the [later] generic form)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from rs_ondemand.dpr.tasktable import TaskTableError
from rs_ondemand.models.timewindow import strftime_millis, to_utc

EXTERNAL_VARIABLE = re.compile(r"\{external_variable\.([A-Za-z_][A-Za-z0-9_]*)\}")


def format_variable(name: str, value: Any) -> Any:
    """The value a variable stands for: datetimes in the RS millisecond format, anything else as it is.

    A value is a datetime when it is one, or when the variable's name contains "datetime" (the [later] rule), in
    which case a date or an ISO 8601 string is accepted too.
    """
    if not (isinstance(value, date) or "datetime" in name):
        return value
    try:
        moment = to_utc(value)
    except ValueError as err:
        raise TaskTableError(f'External variable "{name}" is not a datetime: {value!r}') from err
    if not isinstance(moment, datetime):
        raise TaskTableError(f'External variable "{name}" is not a datetime: {value!r}')
    return strftime_millis(moment)


def substitute(obj: Any, external_variables: Mapping[str, Any]) -> Any:
    """A copy of `obj` with `{external_variable.X}` replaced in every string, at any depth.

    A string that is exactly one placeholder takes the value with its type (a number stays a number); a
    placeholder inside a longer string is replaced by the value's text. A variable that is absent or None is left
    as its placeholder, so the query that needs it reports it with the ADF's name (queries.stac_query) rather
    than sending "None" to a station (open question 13). Containers are always rebuilt, so the result never
    aliases the task table.
    """
    values = {name: format_variable(name, value) for name, value in external_variables.items() if value is not None}
    return _walk(obj, values)


def _walk(obj: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(obj, dict):
        return {key: _walk(value, values) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_walk(value, values) for value in obj]
    if isinstance(obj, str):
        return _replace(obj, values)
    return obj


def _replace(text: str, values: Mapping[str, Any]) -> Any:
    whole = EXTERNAL_VARIABLE.fullmatch(text)
    if whole:
        return values.get(whole.group(1), text)
    return EXTERNAL_VARIABLE.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)
