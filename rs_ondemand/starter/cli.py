"""The `rs-ondemand` command line: one typer group per noun (stack, stage, ...)."""

from __future__ import annotations

import os
import sys

import typer

from rs_ondemand.starter.bench_cmd import bench_app
from rs_ondemand.starter.demo_cmd import demo
from rs_ondemand.starter.operator_cmd import cancel, retry
from rs_ondemand.starter.plan_cmd import plan_app
from rs_ondemand.starter.process_cmd import process_app
from rs_ondemand.starter.schedule_cmd import schedule_app
from rs_ondemand.starter.stack_cmd import stack_app
from rs_ondemand.starter.stage_cmd import stage_app

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Copernicus RS on-demand staging and processing on Temporal.",
)
app.add_typer(stack_app, name="stack")
app.add_typer(stage_app, name="stage")
app.add_typer(process_app, name="process")
app.add_typer(plan_app, name="plan")
app.add_typer(bench_app, name="bench")
app.add_typer(schedule_app, name="schedule")
app.command("demo")(demo)
app.command("retry")(retry)
app.command("cancel")(cancel)


@app.command("worker")
def worker() -> None:
    """Run a worker with the configuration from the environment (and .stack/env)."""
    from rs_ondemand.worker import main as worker_main

    worker_main()


@app.command("status")
def status(
    workflow_id: str,
    as_json: bool = typer.Option(False, "--json", help="Print the progress as one JSON object."),
) -> None:
    """Print the progress of a request once."""
    import asyncio

    from rs_ondemand.client import connect
    from rs_ondemand.config import Settings
    from rs_ondemand.models.processing import DprProgress
    from rs_ondemand.models.progress import Progress
    from rs_ondemand.names import DPR_PROCESSING, PROCESSING_UNIT
    from rs_ondemand.starter._run import print_json, query_progress

    async def go() -> int:
        client = await connect(Settings.load().temporal)
        handle = client.get_workflow_handle(workflow_id)
        described = await handle.describe()
        kind = DprProgress if described.workflow_type in (DPR_PROCESSING, PROCESSING_UNIT) else Progress
        progress = await query_progress(handle, kind)
        if as_json:
            print_json(
                {
                    "workflow_id": workflow_id,
                    "status": described.status.name if described.status else None,
                    "progress": progress.model_dump(mode="json") if progress else None,
                }
            )
        else:
            print(f"{workflow_id}: {described.status.name if described.status else '?'}")
            if progress:
                print_json(progress)
        return 0

    raise typer.Exit(asyncio.run(go()))


def _one_line(err: BaseException) -> str:
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in err.errors())
        return f"invalid request: {problems}"
    from temporalio.client import WorkflowFailureError

    if isinstance(err, WorkflowFailureError):
        from rs_ondemand.starter._run import failure_text

        return f"request failed: {failure_text(err)}"
    return f"{type(err).__name__}: {err}"


def main() -> None:
    """Entry point: errors become one line on stderr (a traceback only with RS_DEBUG=1)."""
    code = 0
    try:
        # Without standalone mode click returns (not raises) the code of a `typer.Exit`.
        returned = app(standalone_mode=False)
        code = returned if isinstance(returned, int) else 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except typer.Exit as exit_:
        code = exit_.exit_code
    except Exception as err:  # the boundary: one clear line instead of a traceback
        import click

        if isinstance(err, click.ClickException):
            err.show()
            code = err.exit_code
        elif os.environ.get("RS_DEBUG"):
            raise
        else:
            print(f"error: {_one_line(err)}", file=sys.stderr)
            code = 1
    # The Temporal client can crash at interpreter exit in short-lived processes (sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
