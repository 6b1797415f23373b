"""Custom search attributes the embedded Temporal dev server registers at start-up."""

from __future__ import annotations

from typing import Final

from rs_ondemand.search_attributes import ALL

# Name -> dev-server type. Keyword because operators filter on exact values (`RsState="failed"`); registering
# them again on an existing db is accepted.
SEARCH_ATTRIBUTES: Final[dict[str, str]] = {key.name: "Keyword" for key in ALL}
