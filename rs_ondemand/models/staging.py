"""Contracts of the staging workflows and activities: station items go through S3 manifests, not history."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, model_validator

from rs_ondemand.models.common import FlowEnv, OperatorInput, SafeName
from rs_ondemand.models.operator import RequestOptions
from rs_ondemand.models.progress import Progress
from rs_ondemand.models.timewindow import UtcDatetime

Station = Literal["cadip", "auxip", "prip"]
ProductType = Field(pattern=r"^[A-Za-z0-9_]{1,64}$", description="Product type, e.g. S01SIWSLC or AUX_RESORB.")


class CadipStagingInput(OperatorInput):
    """Input of `OnDemandCadipStaging`: stage one CADIP session into a catalog collection."""

    env: FlowEnv
    cadip_collection_identifier: SafeName
    """Station collection to search (e.g. `cadip`, `cadip_sentinel1`)."""
    session_identifier: SafeName
    """CADIP session id, e.g. `S1A_20241114143038056552`."""
    catalog_collection_identifier: SafeName
    """Catalog collection receiving the session item (created if missing)."""
    options: RequestOptions = Field(default_factory=RequestOptions)
    require_complete: bool = False
    """Refuse a session whose channels do not all have their final block (by default it is staged with a
    warning in the result and the progress)."""

    @classmethod
    def for_session(
        cls, owner: str, session: str, collection: str, cadip_collection: str = "cadip", **fields: Any
    ) -> Self:
        """The request staging `session` (found in the station's `cadip_collection`) into `collection` for
        `owner`; `fields` adds the rest (`options`). Validated as any input is."""
        return cls.model_validate(
            {
                "env": {"owner_id": owner},
                "cadip_collection_identifier": cadip_collection,
                "session_identifier": session,
                "catalog_collection_identifier": collection,
                **fields,
            }
        )


class WindowStagingInput(OperatorInput):
    """Common input of the window-based staging workflows (PRIP, AUXIP)."""

    env: FlowEnv
    start_datetime: UtcDatetime
    """Start of the validity window: a date or an ISO 8601 datetime (e.g. 2025-08-07T11:51:12.509Z)."""
    end_datetime: UtcDatetime
    product_type: str = ProductType
    catalog_collection_identifier: SafeName
    options: RequestOptions = Field(default_factory=RequestOptions)

    @classmethod
    def for_window(
        cls, owner: str, product_type: str, collection: str, start: datetime | str, end: datetime | str, **fields: Any
    ) -> Self:
        """The request for the `product_type` products valid over `[start, end]`, staged into `collection` for
        `owner`; `fields` adds the rest (the station collection, `options`). Validated as any input is."""
        return cls.model_validate(
            {
                "env": {"owner_id": owner},
                "start_datetime": start,
                "end_datetime": end,
                "product_type": product_type,
                "catalog_collection_identifier": collection,
                **fields,
            }
        )

    @model_validator(mode="after")
    def _window_is_ordered(self) -> Self:
        if self.end_datetime <= self.start_datetime:
            raise ValueError(
                f"end_datetime {self.end_datetime.isoformat()} must be after start_datetime "
                f"{self.start_datetime.isoformat()}"
            )
        return self


class PripStagingInput(WindowStagingInput):
    """Input of `OnDemandPripStaging` (docs/interface.md#workflow-types)."""

    prip_collection: SafeName
    """PRIP station collection to search, e.g. `prip` or `prip_sentinel1`."""


class AuxipStagingInput(WindowStagingInput):
    """Input of `OnDemandAuxipStaging` (docs/interface.md#workflow-types; the original's sibling flow:
    docs/rs-compatibility.md#prip-auxip-staging)."""

    auxip_collection: SafeName | None = None
    """AUXIP station collection to search; every collection when omitted."""


class ItemRef(BaseModel):
    """A station item found by a search, stored as JSON in the work bucket under `manifest_key`."""

    item_id: SafeName
    manifest_key: str
    asset_count: int
    total_bytes: int


class PageRef(BaseModel):
    """A page of `ItemRef`s stored in the work bucket: search results travel in history as these."""

    key: str
    items: int
    assets: int
    bytes: int


class PageList(BaseModel):
    """The references of a search's many result pages, kept as one JSON list of `PageRef`s in the work bucket:
    a search with more pages than one history should carry returns this instead of the references, so neither
    the search's result nor the inputs that pass it on grow with the number of products."""

    key: str
    pages: int


class PageListSlice(BaseModel):
    """Pages `start` to `start + count` (excluded) of a `PageList`."""

    page_list: PageList
    start: int = Field(ge=0)
    count: int = Field(ge=1)


class StationSearchInput(BaseModel):
    """A STAC search on a station, every result page followed (the original stopped at 10)."""

    station: Station
    request_id: str
    """Prefix of this request's manifests in the work bucket."""
    ids: list[str] | None = None
    collections: list[str] | None = None
    filter: dict[str, Any] | None = None
    """CQL2-JSON, validated with the cql2 library before it is sent."""
    sortby: list[dict[str, str]] | None = None
    max_items: int | None = None
    page_size: int = Field(100, ge=1, le=1000)
    require_complete: bool = False
    """CADIP: refuse incomplete sessions instead of warning about them."""
    inline_pages: int = Field(100, ge=1)
    """At most this many page references come back in the result; a search with more keeps them in a
    `PageList` (`SearchResult.page_list`)."""


class SearchResult(BaseModel):
    pages: list[PageRef]
    """Every result page, unless the search found more than its `inline_pages`: then none, see `page_list`."""
    page_list: PageList | None = None
    """Where the page references are when there are too many to return."""
    items: int = 0
    assets: int = 0
    bytes: int = 0
    station: str | None = None
    """Name of the station searched (its downloads go through its own queue); None in older histories."""
    warnings: list[str] = Field(default_factory=list)
    """What the operator should know about what was found (an incomplete session...)."""


class AssetSlice(BaseModel):
    """A window over the (item, asset) pairs of some items, in item order then asset-name order: the part of a
    page one `Staging` child transfers when the page has more assets than one history should hold."""

    items: list[ItemRef]
    """The page's items to stage (those already in the catalog left out), the same for every part."""
    start: int
    end: int


class StagingInput(BaseModel):
    """Input of the `Staging` child: stage the items of a search page into one catalog collection."""

    env: FlowEnv
    catalog_collection_identifier: SafeName
    station: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    """Name of the station the items come from: its downloads go through that station's download queue."""
    page: PageRef
    report_to: str | None = None
    """Workflow id of the parent that wants `staging_progress` signals."""
    max_parallel_transfers: int = Field(8, ge=1, le=256)
    """Assets this child streams at once: its share of the request's `options.max_parallel_transfers`."""
    options: RequestOptions = Field(default_factory=RequestOptions)
    progress_reports: int = Field(20, ge=1)
    """About how many progress signals this child may send its parent (the parent splits its budget)."""
    assets_per_child: int = Field(500, ge=1)
    """At most this many assets are transferred in this workflow's history: a page with more is transferred in
    parts (set by the parent from `workflows/_limits.py`, so a continued run keeps the split it started with)."""
    part: AssetSlice | None = None
    """Set on a part of a page whose items have too many assets for one history: this child transfers the slice
    only (no catalog check, no publication, no cleanup); the page's `Staging` does the rest."""


MAX_LISTED_IDS = 1000
"""Item ids listed in a result at most; counts are always complete (results must stay small in history)."""


class StagingResult(BaseModel):
    staged: list[str] = Field(default_factory=list)
    """Ids of items this request published (the first MAX_LISTED_IDS)."""
    skipped: list[str] = Field(default_factory=list)
    """Ids of items already in the catalog collection: nothing was downloaded for them."""
    items_staged: int = 0
    items_skipped: int = 0
    assets_staged: int = 0
    bytes_staged: int = 0

    def add(self, other: StagingResult) -> None:
        self.staged += other.staged[: max(0, MAX_LISTED_IDS - len(self.staged))]
        self.skipped += other.skipped[: max(0, MAX_LISTED_IDS - len(self.skipped))]
        self.items_staged += other.items_staged
        self.items_skipped += other.items_skipped
        self.assets_staged += other.assets_staged
        self.bytes_staged += other.bytes_staged


class PagesStagingInput(BaseModel):
    """Input of `StagingPages`: stage many result pages, `Staging` children a few at a time, continuing as new
    every few pages (`first_page` moves on from one run to the next)."""

    env: FlowEnv
    catalog_collection_identifier: SafeName
    station: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    """Name of the station the items come from (its download queue)."""
    pages: list[PageRef] = Field(default_factory=list)
    """The pages left to stage, when the search returned them itself (older requests); else empty."""
    page_list: PageList | None = None
    """Every page of the request, read a run's worth at a time: each run's input stays the same size."""
    items: int = 0
    """Items on all the request's pages (with `page_list`)."""
    first_page: int = 0
    """Number of this run's first page among the request's pages (children are named after it)."""
    pages_per_run: int = Field(100, ge=1)
    """Pages one run stages before it continues as new (from `workflows/_limits.py`)."""
    assets_per_child: int = Field(500, ge=1)
    report_to: str
    progress_reports: int = Field(200, ge=1)
    options: RequestOptions = Field(default_factory=RequestOptions)
    staged: StagingResult = Field(default_factory=lambda: StagingResult())
    """What the earlier runs staged."""
    done: Progress = Field(default_factory=Progress)
    """The counts of the earlier runs (their children's, summed)."""


class StagingReport(BaseModel):
    """A `Staging` child's progress, signalled to its parent."""

    child_id: str
    progress: Progress


class PrepareStagingInput(BaseModel):
    owner_id: str
    collection: str
    item_ids: list[str]
    request_id: str | None = None
    """The request staging (top-level workflow id): recorded in the collection if it creates it."""


class RemoveCollectionsInput(BaseModel):
    owner_id: str
    collections: list[str]
    request_id: str
    """Only collections this request created are removed (and only while empty)."""


class PrepareStagingResult(BaseModel):
    existing: list[str]
    """Item ids already staged: in the collection, every asset in S3 as the item describes it."""
    incomplete: list[str] = []
    """Item ids in the collection whose objects are missing or differ: staged again."""


class TransferPageInput(BaseModel):
    """A window over the (item, asset) pairs of some items, in item order then asset-name order."""

    owner_id: str
    collection: str
    items: list[ItemRef]
    offset: int = 0
    limit: int = 200


class AssetTransfer(BaseModel):
    """One asset to copy from a station to S3 (a few hundred bytes: safe to fan out in history)."""

    item_id: str
    asset_name: SafeName
    href: str
    size: int | None = None
    md5: str | None = None
    """Hex MD5 announced by the station, if any."""
    bucket: str
    key: str


class TransferPage(BaseModel):
    transfers: list[AssetTransfer]
    next_offset: int | None = None


class TransferPlanInput(BaseModel):
    """Plan a window of transfers: which assets go in batches (small files) and which one by one."""

    window: TransferPageInput
    station: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    """Name of the station the files come from (whether it caps requests per minute)."""
    parallel: int = Field(1, ge=1)
    """Transfers the workflow runs at once: the small files are spread over at least this many batches."""
    skip_staged: bool = False
    """Leave out the assets S3 already holds verified (an item transferred again after some of it was lost)."""


class TransferPlan(BaseModel):
    singles: list[AssetTransfer]
    """Transferred one per activity, resumable part by part (large files, or of unknown size)."""
    batches: list[list[AssetTransfer]]
    """Small files, each list transferred by one activity."""
    next_offset: int | None = None

    def transfers(self) -> list[AssetTransfer]:
        """Every transfer of the plan, the single ones first."""
        return self.singles + [transfer for batch in self.batches for transfer in batch]


class BatchResult(BaseModel):
    sizes: list[int]
    """Bytes of each file of the batch, in its order (each verified against the station's size and MD5)."""
    resumed: int = 0
    """Files a retried batch found already staged (and did not transfer again)."""


class TransferResult(BaseModel):
    key: str
    size: int
    md5: str


class CadipStagingResult(BaseModel):
    session_identifier: str
    catalog_collection_identifier: str
    staging: StagingResult
    warnings: list[str] = Field(default_factory=list)
    """E.g. that the session was incomplete when staged (a channel without its final block)."""


class WindowStagingResult(BaseModel):
    """Result of PRIP and AUXIP staging: what the search found and what was staged."""

    catalog_collection_identifier: str
    filter: dict[str, Any]
    """The CQL2-JSON filter that was sent (the ValCover filter)."""
    items_found: int
    staging: StagingResult


class StacQuery(BaseModel):
    """The body fragment of a STAC search, as task tables write it (`filter`, `sortby`, `limit`)."""

    filter: dict[str, Any] | None = None
    sortby: list[dict[str, str]] | None = None
    limit: int | None = None


class CatalogItemRef(BaseModel):
    """A staged item as the catalog has it: its assets at their `s3://` locations."""

    id: str
    collection: str
    assets: dict[str, str] = Field(default_factory=dict)
    """Asset name → href."""


class ReadCatalogItemsInput(BaseModel):
    collection: str
    ids: list[str]
    owner_id: str | None = None
    """The collection's owner, for a catalog with RS-Server naming (None: the catalog's authenticated user)."""


class QueryStagingOutcome(BaseModel):
    """What the reusable AUXIP-staging step gives back."""

    items: list[CatalogItemRef] = Field(default_factory=list)
    timed_out: bool = False
