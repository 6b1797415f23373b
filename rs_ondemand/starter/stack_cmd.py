"""`rs-ondemand stack up|status|down` (placeholder, being written)."""

import typer

stack_app = typer.Typer(no_args_is_help=True, help="The embedded local stack.")
