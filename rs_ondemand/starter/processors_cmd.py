"""`rs-ondemand processors list [--json]`: the DPR processors this machine's EOPF environment can run, and those
it can only plan.

A processor is runnable when every unit module of its task table imports in the EOPF environment
(`RS_EOPF_EXECUTABLE`'s venv), and a request runs on one of the worker's Dask cluster labels
(`RS_EOPF_DASK_CLUSTERS`, or `RS_EOPF_DEFAULT_DASK_CLUSTER` for the labels it does not know). Its task table is a
shipped file (`rs_ondemand/dpr/tasktables/`), else the one the processor serves through EOPF.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

processors_app = typer.Typer(no_args_is_help=True, help="The DPR processors: runnable here, or plan-only.")


@processors_app.command("list")
def list_processors(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Every processor with a task table: runnable (its units import in the EOPF environment) or plan-only (and
    why), where its task table comes from, and the Dask cluster labels requests may name."""
    from rs_ondemand.activities.eopf_env import EopfEnvironmentError, eopf_processors
    from rs_ondemand.config import ProcessorSettings
    from rs_ondemand.starter._boundary import refuse

    settings = ProcessorSettings()
    try:
        catalog = asyncio.run(eopf_processors(settings.executable))
    except EopfEnvironmentError as err:
        refuse(str(err))
    listing = {
        "eopf": str(settings.executable),
        "dask_cluster_labels": sorted(settings.dask_clusters),
        "default_dask_cluster": settings.default_dask_cluster,
        "processors": [info.model_dump(mode="json") for info in catalog.values()],
    }
    if as_json:
        print(json.dumps(listing, indent=2))
        return

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True)
    table = Table()
    for column in ("processor", "status", "task table", "units"):
        table.add_column(column)
    for info in catalog.values():
        status = "[green]runnable[/green]" if info.runnable else "[yellow]plan-only[/yellow]"
        served = "" if info.served_tasktable == "none" else f" (it serves one: {info.served_tasktable})"
        table.add_row(escape(info.name), status, escape(info.source + served), str(len(info.units)))
    console.print(table)
    for info in catalog.values():
        if info.why_not:
            console.print(f"{escape(info.name)}: {escape(info.why_not)}")
    default = f", default for other labels: {settings.default_dask_cluster}" if settings.default_dask_cluster else ""
    console.print(f"Dask cluster labels: {escape(', '.join(sorted(settings.dask_clusters)))}{escape(default)}")
