"""Custom search attributes the embedded Temporal dev server registers at start-up."""

from __future__ import annotations

from typing import Final

# Name -> dev-server type (Text, Keyword, Int, Double, Bool, Datetime, KeywordList). Keyword because operators
# filter on exact values (`RsState="failed"`); registering them again on an existing db is accepted.
SEARCH_ATTRIBUTES: Final[dict[str, str]] = {
    "RsOwner": "Keyword",
    "RsState": "Keyword",
    "RsStation": "Keyword",
    "RsSession": "Keyword",
    "RsProcessor": "Keyword",
    "RsMission": "Keyword",
    "RsCollection": "Keyword",
}
