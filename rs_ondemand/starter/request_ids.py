"""Workflow ids derived from requests: the same request is the same execution (duplicates attach to it).

Every input that changes what a request does is part of its id, so that two different requests never share
one: the readable parts name the owner, the collections, the station collection and the window; DPR requests,
too rich to spell out, end with a digest of every field. What says *how* to run a request (`options`, the
tracing `calling_span`) is left out: the same request with other options attaches to the running one.
"""

from __future__ import annotations

import hashlib
import json

from rs_ondemand.models.dpr import DprProcessIn
from rs_ondemand.models.staging import AuxipStagingInput, CadipStagingInput, PripStagingInput, WindowStagingInput
from rs_ondemand.models.timewindow import strftime_millis

MAX_ID_LENGTH = 256
"""Temporal refuses ids over 1000 characters (its default `limit.maxIDLength`), and the workflows derive longer
ids (children, ADF queries) and S3 keys (manifests, payloads) from a request's: a request id stays far below."""

ANY_COLLECTION = "*"
"""Stands for "every station collection" (an AUXIP request without `auxip_collection`); no collection name
can be `*`, so it never reads as one."""

_DIGEST_LENGTH = 16


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_LENGTH]


def request_id(*parts: str) -> str:
    """`parts` joined by `/` (no part can hold a `/`); when that is too long, its first characters, `~` and a
    digest of the whole (no request id has a `~` otherwise, so a shortened id never equals a whole one)."""
    readable = "/".join(parts)
    if len(readable) <= MAX_ID_LENGTH:
        return readable
    return f"{readable[: MAX_ID_LENGTH - _DIGEST_LENGTH - 1]}~{_digest(readable)}"


def cadip_workflow_id(request: CadipStagingInput) -> str:
    return request_id(
        "cadip-staging",
        request.env.owner_id,
        request.catalog_collection_identifier,
        request.cadip_collection_identifier,
        request.session_identifier,
        *(["complete"] if request.require_complete else []),  # refusing an incomplete session is another request
    )


def _window_id(kind: str, request: WindowStagingInput, station_collection: str) -> str:
    return request_id(
        kind,
        request.env.owner_id,
        request.catalog_collection_identifier,
        station_collection,
        request.product_type,
        strftime_millis(request.start_datetime),
        strftime_millis(request.end_datetime),
    )


def prip_workflow_id(request: PripStagingInput) -> str:
    return _window_id("prip-staging", request, request.prip_collection)


def auxip_workflow_id(request: AuxipStagingInput) -> str:
    return _window_id("auxip-staging", request, request.auxip_collection or ANY_COLLECTION)


def window_workflow_id(request: PripStagingInput | AuxipStagingInput) -> str:
    return prip_workflow_id(request) if isinstance(request, PripStagingInput) else auxip_workflow_id(request)


def dpr_workflow_id(request: DprProcessIn) -> str:
    """Readable parts (owner, processor, pipeline or unit, first input), then a digest of the whole request.

    The digest covers every field as validated (datetimes in UTC, the listed aux map merged), so the same request
    written differently has the same id.
    """
    fields = request.model_dump(mode="json", exclude={"options": True, "env": {"calling_span"}})
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    first_input = next(iter(request.input_items().values()))[0]
    readable = "/".join(
        ("dpr-processing", request.env.owner_id, request.processor_name, request.pipeline or request.unit or "")
    )
    # The digest tells requests apart: the readable head is cut, if need be, so that it always fits.
    head = f"{readable}/{first_input}"[: MAX_ID_LENGTH - _DIGEST_LENGTH - 1]
    return f"{head}/{_digest(canonical)}"
