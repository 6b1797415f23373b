"""`rs-ondemand demo`: the main job on the embedded stack, start to finish, for a first look."""

from __future__ import annotations

from typing import Annotated

import typer

SAMPLE_SESSION = "S1A_20241114143038056552"
"""A real CADIP session (2 channels) that the station simulator serves."""


def demo(
    session: Annotated[str, typer.Option("--session", help="CADIP session to stage.")] = SAMPLE_SESSION,
    catalog_collection: Annotated[str, typer.Option("--catalog-collection")] = "s1-cadip-session",
    owner: Annotated[str, typer.Option("--owner")] = "operator",
) -> None:
    """Bring the embedded stack up, stage a CADIP session, print its catalog item and the Temporal UI link."""
    import asyncio
    import json
    import sys

    import httpx
    from rich.console import Console

    from rs_ondemand.config import Settings
    from rs_ondemand.models.staging import CadipStagingInput, CadipStagingResult
    from rs_ondemand.names import CADIP_STAGING
    from rs_ondemand.stack.launcher import Stack, default_state_dir
    from rs_ondemand.starter._run import follow, start
    from rs_ondemand.starter.request_ids import cadip_workflow_id

    console = Console(stderr=True)
    info = Stack(default_state_dir()).up()
    console.print(f"stack up in {info.seconds:.1f} s; Temporal UI: {info.temporal_ui_url}")
    settings = Settings.load(info.env_file)
    request = CadipStagingInput.model_validate(
        {
            "env": {"owner_id": owner},
            "cadip_collection_identifier": "cadip",
            "session_identifier": session,
            "catalog_collection_identifier": catalog_collection,
        }
    )
    workflow_id = cadip_workflow_id(request)

    async def go() -> None:
        _, handle = await start(settings, CADIP_STAGING, request, workflow_id, CadipStagingResult)
        result = await follow(handle)
        console.print(
            f"staged {len(result.staging.staged)} item(s), skipped {len(result.staging.skipped)} already staged"
        )

    asyncio.run(go())
    item = httpx.get(f"{settings.catalog.url}/collections/{catalog_collection}/items/{session}", timeout=30)
    item.raise_for_status()
    print(json.dumps(item.json(), indent=2))
    from rs_ondemand.client import ui_link

    print(f"catalog item: {settings.catalog.url}/collections/{catalog_collection}/items/{session}", file=sys.stderr)
    print(f"workflow in the Temporal UI: {ui_link(settings.temporal, workflow_id)}", file=sys.stderr)
