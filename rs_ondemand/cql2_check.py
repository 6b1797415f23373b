"""Validation of CQL2 filters with the cql2 library, for every filter the project sends (station and ADF searches).

Kept apart from `cql2_filters` (imported by workflow code): this module loads the cql2 native extension."""

from __future__ import annotations

import functools
import json
from typing import Any

import cql2


class Cql2Error(ValueError):
    """The filter is not valid CQL2; the message is cql2's own."""


def check_cql2(cql2_filter: dict[str, Any] | str) -> None:
    """Raise `Cql2Error` unless `cql2_filter` is valid: a dict is CQL2-JSON, a string CQL2-text (as a STAC search
    with `"filter-lang": "cql2-text"` reads it)."""
    is_text = isinstance(cql2_filter, str)
    try:
        _check_cached(cql2_filter if isinstance(cql2_filter, str) else json.dumps(cql2_filter, sort_keys=True), is_text)
    # cql2 raises ValidationError/ParseError, and a bare Exception on some malformed input.
    except Exception as err:
        raise Cql2Error(str(err)) from err


@functools.lru_cache(maxsize=256)
def _check_cached(text: str, is_text: bool) -> None:
    """cql2's schema validation costs about 30 ms a call, and the same few filters come back for every run and
    retry. Only successes are cached (`lru_cache` never stores an exception)."""
    (cql2.parse_text(text) if is_text else cql2.parse_json(text)).validate()
