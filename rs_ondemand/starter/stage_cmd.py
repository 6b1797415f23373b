"""`rs-ondemand stage cadip|prip|auxip`: start on-demand staging requests."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from pydantic import BaseModel

stage_app = typer.Typer(no_args_is_help=True, help="Stage station data into the catalog.")

Owner = Annotated[str, typer.Option("--owner", envvar="RS_OWNER_ID", help="Owner of the staged data.")]
Wait = Annotated[bool, typer.Option("--wait", help="Follow progress until the request ends.")]
CatalogCollection = Annotated[str, typer.Option("--catalog-collection", help="Catalog collection receiving the data.")]
Start = Annotated[str, typer.Option("--start", help="Window start: a date or an ISO 8601 datetime.")]
End = Annotated[str, typer.Option("--end", help="Window end: a date or an ISO 8601 datetime.")]
ProductType = Annotated[str, typer.Option("--product-type", help="Product type, e.g. S01SIWSLC or AUX_RESORB.")]


def _launch(workflow: str, request: BaseModel, workflow_id: str, result_type: type[BaseModel], wait: bool) -> None:
    from rs_ondemand.config import Settings
    from rs_ondemand.starter._run import follow, print_json, start

    settings = Settings.load()

    async def go() -> None:
        _, handle = await start(settings, workflow, request, workflow_id, result_type)
        if wait:
            print_json(await follow(handle))

    asyncio.run(go())


@stage_app.command("cadip")
def stage_cadip(
    session: Annotated[str, typer.Option("--session", help="CADIP session id, e.g. S1A_20241114143038056552.")],
    cadip_collection: Annotated[str, typer.Option("--cadip-collection", help="Station collection.")] = "cadip",
    catalog_collection: CatalogCollection = "s1-cadip-session",
    owner: Owner = "operator",
    wait: Wait = False,
) -> None:
    """Stage one CADIP session: every chunk file to S3, then the session item into the catalog."""
    from rs_ondemand.models.staging import CadipStagingInput, CadipStagingResult
    from rs_ondemand.names import CADIP_STAGING
    from rs_ondemand.starter.request_ids import cadip_workflow_id

    request = CadipStagingInput.for_session(owner, session, catalog_collection, cadip_collection=cadip_collection)
    _launch(CADIP_STAGING, request, cadip_workflow_id(request), CadipStagingResult, wait)


@stage_app.command("prip")
def stage_prip(
    start: Start,
    end: End,
    product_type: ProductType,
    prip_collection: Annotated[str, typer.Option("--prip-collection", help="PRIP station collection.")] = "prip",
    catalog_collection: CatalogCollection = "s1-l1",
    owner: Owner = "operator",
    wait: Wait = False,
) -> None:
    """Stage every PRIP product of a type whose validity covers [start, end]."""
    from rs_ondemand.models.staging import PripStagingInput, WindowStagingResult
    from rs_ondemand.names import PRIP_STAGING
    from rs_ondemand.starter.request_ids import prip_workflow_id

    request = PripStagingInput.for_window(
        owner, product_type, catalog_collection, start, end, prip_collection=prip_collection
    )
    _launch(PRIP_STAGING, request, prip_workflow_id(request), WindowStagingResult, wait)


@stage_app.command("auxip")
def stage_auxip(
    start: Start,
    end: End,
    product_type: ProductType,
    auxip_collection: Annotated[
        str | None, typer.Option("--auxip-collection", help="AUXIP station collection (default: all).")
    ] = None,
    catalog_collection: CatalogCollection = "s1-aux",
    owner: Owner = "operator",
    wait: Wait = False,
) -> None:
    """Stage every AUXIP file of a type whose validity covers [start, end]."""
    from rs_ondemand.models.staging import AuxipStagingInput, WindowStagingResult
    from rs_ondemand.names import AUXIP_STAGING
    from rs_ondemand.starter.request_ids import auxip_workflow_id

    request = AuxipStagingInput.for_window(
        owner, product_type, catalog_collection, start, end, auxip_collection=auxip_collection
    )
    _launch(AUXIP_STAGING, request, auxip_workflow_id(request), WindowStagingResult, wait)
