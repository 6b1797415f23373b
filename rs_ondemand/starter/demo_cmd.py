"""`rs-ondemand demo`: the main job on the embedded stack, start to finish, for a first look."""

from __future__ import annotations

from typing import Annotated

import typer

from rs_ondemand.starter.samples import SAMPLE_SESSION, demo_dpr_request


def demo(
    session: Annotated[str, typer.Option("--session", help="CADIP session to stage.")] = SAMPLE_SESSION,
    catalog_collection: Annotated[str, typer.Option("--catalog-collection")] = "s1-cadip-session",
    owner: Annotated[str, typer.Option("--owner")] = "operator",
) -> None:
    """Bring the embedded stack up, stage a CADIP session, run the demo DPR processor on it, and print the
    published product's catalog item (which links back to the session and the orbit it used)."""
    import asyncio
    import json
    import sys

    import httpx
    from rich.console import Console

    from rs_ondemand.client import ui_link
    from rs_ondemand.config import Settings
    from rs_ondemand.models.dpr import DprProcessIn, DprProcessResult
    from rs_ondemand.models.staging import CadipStagingInput, CadipStagingResult
    from rs_ondemand.names import CADIP_STAGING, DPR_PROCESSING
    from rs_ondemand.stack.launcher import Stack, default_state_dir
    from rs_ondemand.starter._run import start
    from rs_ondemand.starter.request_ids import cadip_workflow_id, dpr_workflow_id
    from rs_ondemand.starter.watch import follow

    console = Console(stderr=True)
    info = Stack(default_state_dir()).up()
    console.print(f"stack up in {info.seconds:.1f} s; Temporal UI: {info.temporal_ui_url}")
    settings = Settings.load(info.env_file)
    staging = CadipStagingInput.for_session(owner, session, catalog_collection)
    processing = DprProcessIn.model_validate(demo_dpr_request(owner, session, catalog_collection))

    async def go() -> DprProcessResult:
        console.rule(f"1/2 staging CADIP session {session}")
        client, handle = await start(settings, CADIP_STAGING, staging, cadip_workflow_id(staging), CadipStagingResult)
        staged = await follow(client, handle)
        console.print(
            f"staged {len(staged.staging.staged)} item(s), skipped {len(staged.staging.skipped)} already staged"
        )
        console.rule("2/2 DPR processing with the demo processor (EOPF on a local Dask cluster)")
        client, handle = await start(
            settings, DPR_PROCESSING, processing, dpr_workflow_id(processing), DprProcessResult
        )
        result: DprProcessResult = await follow(client, handle)
        for alternative in result.alternatives:
            console.print(
                f"ADF {alternative.adf}: {alternative.product_type} -> {alternative.outcome} "
                f"({alternative.duration_s:.1f} s) {' '.join(alternative.items)}"
            )
        return result

    result = asyncio.run(go())
    (product,) = result.published
    url = f"{settings.catalog.url}/collections/{product['collection']}/items/{product['id']}"
    item = httpx.get(url, timeout=30)
    item.raise_for_status()
    print(json.dumps(item.json(), indent=2))
    print(f"session item: {settings.catalog.url}/collections/{catalog_collection}/items/{session}", file=sys.stderr)
    print(f"product item: {url}", file=sys.stderr)
    print(f"workflows in the Temporal UI: {ui_link(settings.temporal, dpr_workflow_id(processing))}", file=sys.stderr)
