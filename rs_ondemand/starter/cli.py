"""The `rs-ondemand` command line: one typer group per noun (stack, stage, ...)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from rs_ondemand.names import WorkerRole
from rs_ondemand.starter.bench_cmd import bench_app
from rs_ondemand.starter.check_cmd import check_app
from rs_ondemand.starter.demo_cmd import demo
from rs_ondemand.starter.operator_cmd import cancel, retry
from rs_ondemand.starter.plan_cmd import plan_app
from rs_ondemand.starter.process_cmd import process_app
from rs_ondemand.starter.processors_cmd import processors_app
from rs_ondemand.starter.schedule_cmd import schedule_app
from rs_ondemand.starter.stack_cmd import stack_app
from rs_ondemand.starter.stage_cmd import stage_app
from rs_ondemand.starter.stations_cmd import stations_app

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: help texts show as written (rich markup took "[start, end]" for a tag) and flags without a
    # `<bool>` metavar.
    rich_markup_mode=None,
    help="Copernicus RS on-demand staging and processing on Temporal.",
)
app.add_typer(stack_app, name="stack")
app.add_typer(stage_app, name="stage")
app.add_typer(process_app, name="process")
app.add_typer(plan_app, name="plan")
app.add_typer(processors_app, name="processors")
app.add_typer(bench_app, name="bench")
app.add_typer(schedule_app, name="schedule")
app.add_typer(check_app, name="check")
app.add_typer(stations_app, name="stations")
app.command("demo")(demo)
app.command("retry")(retry)
app.command("cancel")(cancel)


@app.command("worker")
def worker(
    role: Annotated[
        WorkerRole,
        typer.Option(
            "--role",
            help="staging: the main queue and the stations' download queues; processing: the EOPF queue "
            "(<queue>-processor); all: both.",
        ),
    ] = "all",
) -> None:
    """Run a worker with the configuration from the environment (and .stack/env)."""
    from rs_ondemand.worker import main as worker_main

    worker_main(role)


@app.command("status")
def status(
    workflow_id: str,
    as_json: bool = typer.Option(False, "--json", help="Print status and progress as one JSON object."),
) -> None:
    """Show where a request is: its state and counts, its errors and, while it waits for an operator, the
    commands that answer it."""
    import asyncio

    from rs_ondemand.client import connect
    from rs_ondemand.config import Settings
    from rs_ondemand.starter._run import print_json
    from rs_ondemand.starter.watch import read_request

    async def go() -> None:
        view = await read_request(await connect(Settings.load().temporal), workflow_id)
        if as_json:
            print_json(view.as_json())
        else:
            print("\n".join(view.lines()))

    asyncio.run(go())


def run(args: list[str] | None = None) -> int:
    """`rs-ondemand ARGS` (default: the process's arguments); its exit code. Errors become one line on stderr
    (a traceback only with RS_DEBUG=1)."""
    code = 0
    try:
        # Without standalone mode click returns (not raises) the code of a `typer.Exit`.
        returned = app(args=args, standalone_mode=False)
        code = returned if isinstance(returned, int) else 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except typer.Exit as exit_:
        code = exit_.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except Exception as err:  # the boundary: one clear line instead of a traceback
        from rs_ondemand.starter._boundary import INVALID_REQUEST, Refused, one_line

        if isinstance(err, Refused):
            print(f"error: {err}", file=sys.stderr)
            code = INVALID_REQUEST
        elif isinstance(err, typer.TyperException):
            # typer's own click: usage errors (a missing option, a bad value) show the usage line, exit code 2.
            show = getattr(err, "show", None)
            if callable(show):
                show()
            else:
                print(f"error: {err}", file=sys.stderr)
            code = err.exit_code
        elif os.environ.get("RS_DEBUG"):
            raise
        else:
            print(f"error: {one_line(err)}", file=sys.stderr)
            code = 1
    return code


def main() -> None:
    """The `rs-ondemand` entry point."""
    code = run()
    # The Temporal client can crash at interpreter exit in short-lived processes (sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
