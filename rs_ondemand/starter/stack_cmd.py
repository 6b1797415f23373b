"""`rs-ondemand stack up|status|down`: the embedded local stack from the command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rs_ondemand.stack import Stack, StackError

stack_app = typer.Typer(no_args_is_help=True, help="The embedded local stack (Temporal, S3, catalog, stations).")

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        envvar="RS_STACK_DIR",
        help="State dir of the stack (env file, logs, data). Default: ./.stack",
        show_default=False,
    ),
]


# Non-zero exits raise SystemExit rather than typer.Exit: click hands typer.Exit's code back as a return value
# when the top-level app runs with standalone_mode=False, where SystemExit always reaches the caller.


def _fail(error: StackError) -> SystemExit:
    """One line on stderr (plus the quoted log tail, if any) and exit code 1, no traceback."""
    print(f"error: {error.summary}" + (f" (log: {error.log_path})" if error.log_path else ""), file=sys.stderr)
    for line in error.log_tail.splitlines():
        print(f"  | {line}", file=sys.stderr)
    return SystemExit(1)


def _run[T](action: Callable[[], T]) -> T:
    from rs_ondemand.stack import StackError

    try:
        return action()
    except StackError as error:
        raise _fail(error) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None


def _stack(directory: Path | None, **options: Any) -> Stack:
    from rs_ondemand.stack import Stack

    return Stack(directory, **options)


@stack_app.command()
def up(
    directory: DirOption = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Do not start a worker.")] = False,
    no_simulator: Annotated[bool, typer.Option("--no-simulator", help="Do not start the station simulator.")] = False,
) -> None:
    """Start the stack in the background (only what is not running yet) and write its env file."""
    from rich.console import Console
    from rich.table import Table

    stack = _stack(directory, with_worker=not no_worker, with_simulator=not no_simulator)
    info = _run(stack.up)
    table = Table(title=f"rs-ondemand stack ({info.seconds:.1f} s)", title_justify="left")
    for column in ("service", "address", "pid", ""):
        table.add_column(column)
    for service in info.services.values():
        table.add_row(service.name, service.url, str(service.pid or ""), "started" if service.started else "running")
    console = Console()
    console.print(table)
    console.print(f"Temporal UI: [link={info.temporal_ui_url}]{info.temporal_ui_url}[/link]")
    console.print(f"Env file:    {info.env_file}   (load it with: set -a; . {info.env_file}; set +a)")


@stack_app.command()
def status(
    directory: DirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Show the endpoints and whether each service is healthy (exit code 1 if one is not)."""
    report = _run(_stack(directory).status)
    services: dict[str, dict[str, Any]] = report["services"]
    all_healthy = all(service["healthy"] for service in services.values())
    if as_json:
        print(json.dumps(report))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table()
        for column in ("service", "address", "pid", "healthy"):
            table.add_column(column)
        for name, service in services.items():
            health = "[green]yes[/green]" if service["healthy"] else "[red]no[/red]"
            table.add_row(name, service["url"] or "", str(service["pid"] or ""), health)
        Console().print(table)
    if not all_healthy:
        raise SystemExit(1)


@stack_app.command()
def down(
    directory: DirOption = None,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete the data: Temporal history, catalog, credentials (not logs).")
    ] = False,
) -> None:
    """Stop every service this stack started; data is kept for the next `up` unless --purge."""
    stack = _stack(directory)
    stopped = _run(lambda: stack.down(purge=purge))
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running", file=sys.stderr)
