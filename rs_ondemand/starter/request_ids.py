"""Workflow ids derived from requests: the same request is the same execution (duplicates attach to it)."""

from __future__ import annotations

import hashlib
import json

from rs_ondemand.models.processing import DprProcessIn
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


def dpr_workflow_id(request: DprProcessIn) -> str:
    """Readable parts (owner, processor, pipeline or unit, first input), then a digest of the whole request.

    The digest covers every field as validated (datetimes in UTC, the listed aux map merged), so the same request
    written differently has the same id; `options` and the tracing `calling_span` say how to run it, not what,
    and are left out, as in the staging ids.
    """
    fields = request.model_dump(mode="json", exclude={"options": True, "env": {"calling_span"}})
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    first_input = next(iter(request.input_items().values()))[0]
    return "/".join(
        (
            "dpr-processing",
            request.env.owner_id,
            request.processor_name,
            request.pipeline or request.unit or "",
            first_input,
            digest,
        )
    )
