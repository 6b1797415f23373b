"""`rs-ondemand stage cadip|prip|auxip`: start on-demand staging requests."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

stage_app = typer.Typer(no_args_is_help=True, help="Stage station data into the catalog.")

Owner = Annotated[str, typer.Option("--owner", envvar="RS_OWNER_ID", help="Owner of the staged data.")]
Wait = Annotated[bool, typer.Option("--wait", help="Follow progress until the request ends.")]


def cadip_workflow_id(owner: str, catalog_collection: str, session: str) -> str:
    """One session staged into one collection for one owner is one request (duplicates attach to it)."""
    return f"cadip-staging/{owner}/{catalog_collection}/{session}"


@stage_app.command("cadip")
def stage_cadip(
    session: Annotated[str, typer.Option("--session", help="CADIP session id, e.g. S1A_20241114143038056552.")],
    cadip_collection: Annotated[str, typer.Option("--cadip-collection", help="Station collection.")] = "cadip",
    catalog_collection: Annotated[
        str, typer.Option("--catalog-collection", help="Catalog collection receiving the session.")
    ] = "s1-cadip-session",
    owner: Owner = "operator",
    wait: Wait = False,
) -> None:
    """Stage one CADIP session: every chunk file to S3, then the session item into the catalog."""
    from rs_ondemand.config import Settings
    from rs_ondemand.models.staging import CadipStagingInput, CadipStagingResult
    from rs_ondemand.names import CADIP_STAGING
    from rs_ondemand.starter._run import follow, print_json, start

    request = CadipStagingInput.model_validate(
        {
            "env": {"owner_id": owner},
            "cadip_collection_identifier": cadip_collection,
            "session_identifier": session,
            "catalog_collection_identifier": catalog_collection,
        }
    )
    settings = Settings.load()

    async def go() -> None:
        workflow_id = cadip_workflow_id(owner, catalog_collection, session)
        _, handle = await start(settings, CADIP_STAGING, request, workflow_id, CadipStagingResult)
        if wait:
            print_json(await follow(handle))

    asyncio.run(go())
