"""Workflow ids derived from requests: the same request is the same execution (duplicates attach to it)."""

from __future__ import annotations

from rs_ondemand.models.staging import AuxipStagingInput, CadipStagingInput, PripStagingInput
from rs_ondemand.models.timewindow import strftime_millis


def cadip_workflow_id(request: CadipStagingInput) -> str:
    return "/".join(
        ("cadip-staging", request.env.owner_id, request.catalog_collection_identifier, request.session_identifier)
    )


def prip_workflow_id(request: PripStagingInput) -> str:
    return "/".join(
        (
            "prip-staging",
            request.env.owner_id,
            request.catalog_collection_identifier,
            request.prip_collection,
            request.product_type,
            strftime_millis(request.start_datetime),
            strftime_millis(request.end_datetime),
        )
    )


def auxip_workflow_id(request: AuxipStagingInput) -> str:
    return "/".join(
        (
            "auxip-staging",
            request.env.owner_id,
            request.catalog_collection_identifier,
            request.auxip_collection or "*",
            request.product_type,
            strftime_millis(request.start_datetime),
            strftime_millis(request.end_datetime),
        )
    )
