"""The `rs-ondemand` command line: one typer group per noun (stack, stage, ...)."""

from __future__ import annotations

import typer

from rs_ondemand.starter.stack_cmd import stack_app

app = typer.Typer(no_args_is_help=True, help="Copernicus RS on-demand staging and processing on Temporal.")
app.add_typer(stack_app, name="stack")


def main() -> None:
    app()
