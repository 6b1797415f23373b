"""Contracts of the staging workflows and activities: station items go through S3 manifests, not history."""

from __future__ import annotations

from pydantic import BaseModel, Field

from rs_ondemand.models.common import FlowEnv, OperatorInput, SafeName


class CadipStagingInput(OperatorInput):
    """Input of `OnDemandCadipStaging`: stage one CADIP session into a catalog collection."""

    env: FlowEnv
    cadip_collection_identifier: SafeName
    """Station collection to search (e.g. `cadip`, `cadip_sentinel1`)."""
    session_identifier: SafeName
    """CADIP session id, e.g. `S1A_20241114143038056552`."""
    catalog_collection_identifier: SafeName
    """Catalog collection receiving the session item (created if missing)."""


class ItemRef(BaseModel):
    """A station item found by a search, stored as JSON in the work bucket under `manifest_key`."""

    item_id: SafeName
    manifest_key: str
    asset_count: int
    total_bytes: int


class SessionSearchInput(BaseModel):
    collection: str
    session_id: str
    request_id: str
    """Prefix of this request's manifests in the work bucket."""


class SearchResult(BaseModel):
    items: list[ItemRef]


class StagingInput(BaseModel):
    """Input of the `Staging` child: stage these station items into one catalog collection."""

    env: FlowEnv
    catalog_collection_identifier: SafeName
    items: list[ItemRef]
    report_to: str | None = None
    """Workflow id of the parent that wants `staging_progress` signals."""
    max_parallel_transfers: int = Field(8, ge=1, le=256)
    """Assets streamed at once by this request."""


class StagingResult(BaseModel):
    staged: list[str] = Field(default_factory=list)
    """Ids of items this request published."""
    skipped: list[str] = Field(default_factory=list)
    """Ids of items already in the catalog collection: nothing was downloaded for them."""
    assets_staged: int = 0
    bytes_staged: int = 0


class PrepareStagingInput(BaseModel):
    owner_id: str
    collection: str
    item_ids: list[str]


class PrepareStagingResult(BaseModel):
    existing: list[str]
    """Item ids already present in the collection."""


class TransferPageInput(BaseModel):
    owner_id: str
    collection: str
    item: ItemRef
    offset: int = 0
    limit: int = 100


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


class TransferResult(BaseModel):
    key: str
    size: int
    md5: str


class PublishItemInput(BaseModel):
    owner_id: str
    collection: str
    item: ItemRef


class PublishItemResult(BaseModel):
    item_id: str
    created: bool
    """False when the item already existed (a concurrent request published it first)."""


class DiscardItemsInput(BaseModel):
    """Remove what a failed or cancelled request wrote for items it did not publish."""

    owner_id: str
    collection: str
    item_ids: list[str]


class DiscardItemsResult(BaseModel):
    objects_deleted: int
    uploads_aborted: int


class CadipStagingResult(BaseModel):
    session_identifier: str
    catalog_collection_identifier: str
    staging: StagingResult
