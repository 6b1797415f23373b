"""`rs-ondemand stage cadip|prip|auxip`: start on-demand staging requests."""

# No `from __future__ import annotations`: typer reads the window commands' annotations, which name values of
# the function that builds them, and those are only reachable while the annotations are evaluated at once.

import asyncio
from collections.abc import Callable
from typing import Annotated, Literal

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
    from rs_ondemand.starter._run import print_json, start
    from rs_ondemand.starter.watch import follow

    settings = Settings.load()

    async def go() -> None:
        client, handle = await start(settings, workflow, request, workflow_id, result_type)
        if wait:
            print_json(await follow(client, handle))

    asyncio.run(go())


@stage_app.command("cadip")
def stage_cadip(
    session: Annotated[str, typer.Option("--session", help="CADIP session id, e.g. S1A_20241114143038056552.")],
    cadip_collection: Annotated[str, typer.Option("--cadip-collection", help="Station collection.")] = "cadip",
    catalog_collection: CatalogCollection = "s1-cadip-session",
    owner: Owner = "operator",
    wait: Wait = False,
    require_complete: Annotated[
        bool,
        typer.Option("--require-complete", help="Refuse a session not complete yet (a channel without FinalBlock)."),
    ] = False,
) -> None:
    """Stage one CADIP session: every chunk file to S3, then the session item into the catalog."""
    from rs_ondemand.models.staging import CadipStagingInput, CadipStagingResult
    from rs_ondemand.names import CADIP_STAGING
    from rs_ondemand.starter._boundary import refused_if_invalid
    from rs_ondemand.starter.request_ids import cadip_workflow_id

    with refused_if_invalid():
        request = CadipStagingInput.for_session(
            owner, session, catalog_collection, cadip_collection=cadip_collection, require_complete=require_complete
        )
    _launch(CADIP_STAGING, request, cadip_workflow_id(request), CadipStagingResult, wait)


def _window_command(
    station: Literal["prip", "auxip"], what: str, default_collection: str | None, default_catalog_collection: str
) -> Callable[..., None]:
    """`stage prip` and `stage auxip`: the same command but for the station, its collection option and defaults."""
    default = f"default: {default_collection}" if default_collection else "default: all"
    StationCollection = Annotated[
        str | None,
        typer.Option(f"--{station}-collection", help=f"{station.upper()} station collection ({default})."),
    ]

    def command(
        start: Start,
        end: End,
        product_type: ProductType,
        station_collection: StationCollection = default_collection,
        catalog_collection: CatalogCollection = default_catalog_collection,
        owner: Owner = "operator",
        wait: Wait = False,
    ) -> None:
        from rs_ondemand.models.staging import AuxipStagingInput, PripStagingInput, WindowStagingResult
        from rs_ondemand.names import AUXIP_STAGING, PRIP_STAGING
        from rs_ondemand.starter._boundary import refused_if_invalid
        from rs_ondemand.starter.request_ids import window_workflow_id

        model, workflow = (PripStagingInput, PRIP_STAGING) if station == "prip" else (AuxipStagingInput, AUXIP_STAGING)
        with refused_if_invalid():
            request = model.for_window(
                owner, product_type, catalog_collection, start, end, **{f"{station}_collection": station_collection}
            )
        _launch(workflow, request, window_workflow_id(request), WindowStagingResult, wait)

    command.__doc__ = f"Stage every {what} of a type whose validity covers [start, end]."
    return command


stage_app.command("prip")(_window_command("prip", "PRIP product", "prip", "s1-l1"))
stage_app.command("auxip")(_window_command("auxip", "AUXIP file", None, "s1-aux"))
