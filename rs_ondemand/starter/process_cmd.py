"""`rs-ondemand process dpr REQUEST.json`: start a DPR processing request."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rs_ondemand.models.dpr import DprProcessIn

process_app = typer.Typer(no_args_is_help=True, help="Run processors on staged data.")

RequestFile = Annotated[
    Path, typer.Argument(help="A DprProcessIn request as JSON (see samples/).", dir_okay=False, show_default=False)
]


def load_request(path: Path) -> DprProcessIn:
    """The request in `path`, validated; a bad file or request ends the command with one line (exit code 2)."""
    from rs_ondemand.models.dpr import DprProcessIn
    from rs_ondemand.starter._boundary import refuse, refused_if_invalid

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        refuse(f"cannot read {str(path)!r}: {getattr(err, 'strerror', None) or err}")
    with refused_if_invalid():
        return DprProcessIn.model_validate_json(text)


@process_app.command("dpr")
def process_dpr(
    request_file: RequestFile,
    wait: Annotated[bool, typer.Option("--wait", help="Follow progress until the request ends.")] = False,
    workflow_id: Annotated[
        str | None, typer.Option("--id", help="Workflow id (default: derived from the request).")
    ] = None,
) -> None:
    """Start DprProcessing: task table → units → ADFs → payload → EOPF → publish.

    Identical requests get the same workflow id: a duplicate attaches to the running one instead of starting twice.
    With --wait the result is printed as JSON (published items, ADF alternatives tried, payload).
    """
    import asyncio

    from rs_ondemand.config import Settings
    from rs_ondemand.models.dpr import DprProcessResult
    from rs_ondemand.names import DPR_PROCESSING
    from rs_ondemand.starter._run import print_json, start
    from rs_ondemand.starter.request_ids import dpr_workflow_id
    from rs_ondemand.starter.watch import follow

    request = load_request(request_file)
    settings = Settings.load()

    async def go() -> None:
        client, handle = await start(
            settings, DPR_PROCESSING, request, workflow_id or dpr_workflow_id(request), DprProcessResult
        )
        if wait:
            print_json(await follow(client, handle))

    asyncio.run(go())
