"""`rs-ondemand check storage [--fix] [--json]`: is the catalog consistent with our data bucket?"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rs_ondemand.starter.storage_check import StorageReport

check_app = typer.Typer(no_args_is_help=True, help="Consistency checks of the stack's data.")


@check_app.command("storage")
def storage(
    fix: Annotated[
        bool, typer.Option("--fix", help="Remove unreferenced objects and leftover uploads and checkpoints.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    grace: Annotated[
        str, typer.Option("--grace", help="Objects younger than this are never removed (e.g. 30m, 1h, 2d).")
    ] = "1h",
    owner: Annotated[str | None, typer.Option("--owner", help="Only this owner's part of the bucket.")] = None,
) -> None:
    """Compare the catalog with the data bucket: objects no item references, items whose objects are missing or
    differ (size, MD5), uploads and transfer checkpoints left by killed workers.

    --fix removes the unreferenced objects and the leftovers, never an object an item references, nothing
    younger than --grace and nothing under the folder of a running request. Exit code 0 when consistent (after
    the fix), 1 otherwise.
    """
    from datetime import timedelta

    import httpx

    from rs_ondemand.activities.catalog_client import CatalogClient
    from rs_ondemand.activities.storage import ObjectStore
    from rs_ondemand.client import connect
    from rs_ondemand.config import Settings
    from rs_ondemand.models.common import FlowEnv
    from rs_ondemand.starter._boundary import refused_if_invalid
    from rs_ondemand.starter.schedules import parse_duration
    from rs_ondemand.starter.storage_check import check_storage, fix_storage, running_prefixes

    grace_period = timedelta(seconds=parse_duration("--grace", grace))
    if owner is not None:
        with refused_if_invalid():
            FlowEnv(owner_id=owner)
    settings = Settings.load()

    async def go() -> StorageReport:
        try:
            in_use = await running_prefixes(await connect(settings.temporal))
        except Exception as err:
            if fix:
                print(f"error: cannot tell which requests are running, nothing removed ({err})", file=sys.stderr)
                raise typer.Exit(1) from None
            print(f"note: Temporal not reachable, running requests not told apart ({err})", file=sys.stderr)
            in_use = set()
        async with ObjectStore.open(settings.s3) as store, httpx.AsyncClient() as http:
            catalog = CatalogClient(settings.catalog, http)
            report = await check_storage(store, catalog, in_use, grace_period, f"{owner}/" if owner else "")
            return await fix_storage(store, report) if fix else report

    report = asyncio.run(go())
    if as_json:
        print(json.dumps(report.as_json(), indent=2, default=str))
    else:
        _show(report)
    remaining = report.assets if fix else not report.consistent
    raise typer.Exit(1 if remaining else 0)


def _show(report: StorageReport) -> None:
    print(f"s3://{report.bucket}: {report.objects} objects, {report.items} catalog items")
    for problem in report.assets:
        print(f"  asset {problem.asset} of {problem.collection}/{problem.item}: {problem.problem} ({problem.key})")
    for key in report.unreferenced:
        print(f"  unreferenced: {key}")
    for upload in report.uploads:
        print(f"  leftover upload: s3://{upload['bucket']}/{upload['key']}")
    for key in report.checkpoints:
        print(f"  leftover checkpoint: {key}")
    if report.kept:
        print(f"  {len(report.kept)} unreferenced object(s) kept: recent, or of a running request")
    if report.removed:
        removed = ", ".join(f"{count} {what}" for what, count in report.removed.items())
        print(f"removed: {removed}")
    elif report.consistent:
        print("consistent")
