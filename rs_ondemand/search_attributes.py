"""Custom search attributes: how operators find requests (`temporal workflow list --query "RsState = '…'"`)."""

from __future__ import annotations

from typing import Final

from temporalio.common import SearchAttributeKey

RS_OWNER: Final = SearchAttributeKey.for_keyword("RsOwner")
RS_STATE: Final = SearchAttributeKey.for_keyword("RsState")
RS_STATION: Final = SearchAttributeKey.for_keyword("RsStation")
RS_SESSION: Final = SearchAttributeKey.for_keyword("RsSession")
RS_PROCESSOR: Final = SearchAttributeKey.for_keyword("RsProcessor")
RS_MISSION: Final = SearchAttributeKey.for_keyword("RsMission")
RS_COLLECTION: Final = SearchAttributeKey.for_keyword("RsCollection")

ALL: Final = (RS_OWNER, RS_STATE, RS_STATION, RS_SESSION, RS_PROCESSOR, RS_MISSION, RS_COLLECTION)
