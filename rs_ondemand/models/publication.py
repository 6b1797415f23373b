"""Contracts of publication into the catalog: staged items handed to a collection's `CollectionPublisher`, and the
cleanups it runs between its writes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from rs_ondemand.models.staging import ItemRef


class PublishItemsInput(BaseModel):
    owner_id: str
    collection: str
    items: list[ItemRef]


class PublisherUpdate(BaseModel):
    """What every update of a `CollectionPublisher` carries (it is started where needed)."""

    update_id: str
    """Unique per attempt of the requester's step: a retried activity re-attaches to its own update."""
    task_queue: str
    """Where the publisher runs if it has to be started."""


class PublicationRequest(PublisherUpdate):
    """A batch of verified items for the `CollectionPublisher` of their collection."""

    publish: PublishItemsInput
    step_attempts: int = Field(10, ge=1)
    """The requester's `options.step_attempts`: how often the publisher tries the write before giving up."""


class PublishItemsResult(BaseModel):
    created: list[str]
    existing: list[str]
    """Items that were already in the collection (a concurrent request published them first)."""
    unverified: list[str] = []
    """Items left out: an asset was missing from S3 or not the station's (the requester transfers them again)."""


class DiscardItemsInput(BaseModel):
    """Remove what a failed or cancelled request wrote for items it did not publish."""

    owner_id: str
    collection: str
    item_ids: list[str]


class DiscardItemsResult(BaseModel):
    objects_deleted: int
    uploads_aborted: int


class DiscardRequest(PublisherUpdate):
    """A cleanup for the `CollectionPublisher` of the collection, run between two of its writes."""

    discard: DiscardItemsInput
