"""Placeholders in task-table values: `{external_variable.X}` (the request's variables, later RS's generic form:
docs/rs-compatibility.md#external-variables) and `{<input>.<property>}` (a property of the catalog item of the
request's input product `<input>`, e.g. `{slcs.start_datetime}`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from rs_ondemand.dpr.tasktable import TaskTableError
from rs_ondemand.models.timewindow import strftime_millis, to_utc

EXTERNAL_VARIABLE = re.compile(r"\{external_variable\.([A-Za-z_][A-Za-z0-9_]*)\}")
INPUT_PROPERTY = re.compile(r"\{(?!external_variable\.)([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_:.-]*)\}")
"""`{<input name>.<property>}`; the key of its value is `<input name>.<property>`."""


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
    than sending "None" to a station (docs/rs-compatibility.md#q13). Containers are always rebuilt, so the result
    never aliases the task table.
    """
    values = {name: format_variable(name, value) for name, value in external_variables.items() if value is not None}
    return _walk(obj, values)


def substitute_input_properties(obj: Any, values: Mapping[str, Any]) -> Any:
    """A copy of `obj` with every `{<input>.<property>}` whose key (`<input>.<property>`) is in `values` replaced,
    with the same rules as `substitute` (a whole-string placeholder keeps the value's type)."""
    return _walk(obj, values, INPUT_PROPERTY, _input_key)


def input_properties_used(obj: Any) -> list[str]:
    """The `<input>.<property>` keys of the placeholders in `obj`, each once, in the order met."""
    return list(dict.fromkeys(_input_key(match) for text in _strings(obj) for match in INPUT_PROPERTY.finditer(text)))


def external_variables_used(obj: Any) -> set[str]:
    """The names of the `{external_variable.X}` placeholders in `obj`."""
    return {match.group(1) for text in _strings(obj) for match in EXTERNAL_VARIABLE.finditer(text)}


def _input_key(match: re.Match[str]) -> str:
    return f"{match.group(1)}.{match.group(2)}"


def _variable_key(match: re.Match[str]) -> str:
    return match.group(1)


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        return [text for value in obj.values() for text in _strings(value)]
    if isinstance(obj, list | tuple):
        return [text for value in obj for text in _strings(value)]
    return [obj] if isinstance(obj, str) else []


def _walk(
    obj: Any,
    values: Mapping[str, Any],
    pattern: re.Pattern[str] = EXTERNAL_VARIABLE,
    key: Callable[[re.Match[str]], str] = _variable_key,
) -> Any:
    if isinstance(obj, dict):
        return {k: _walk(value, values, pattern, key) for k, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_walk(value, values, pattern, key) for value in obj]
    if isinstance(obj, str):
        return _replace(obj, values, pattern, key)
    return obj


def _replace(
    text: str, values: Mapping[str, Any], pattern: re.Pattern[str], key: Callable[[re.Match[str]], str]
) -> Any:
    whole = pattern.fullmatch(text)
    if whole:
        return values.get(key(whole), text)
    return pattern.sub(lambda m: str(values[key(m)]) if key(m) in values else m.group(0), text)
