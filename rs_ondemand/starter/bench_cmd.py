"""`rs-ondemand bench staging|orchestration`: benchmarks against the embedded stack (one JSON object with
`--json`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks against the embedded stack.")


@bench_app.command("staging")
def bench_staging(
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as one JSON object.")] = False,
    size_mib: Annotated[int, typer.Option("--size-mib", min=1, help="Size of the staged file in MiB.")] = 1024,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Runs of each side; the best is kept.")] = 2,
) -> None:
    """Our CADIP staging workflow end to end vs a plain station → S3 copy of the same bytes, plus worker RSS.

    Brings the embedded stack up (or reuses the running one) and leaves it running. Exits 0 whether or not
    the targets are met (`met` in the results says).
    """
    import json
    import sys

    from rich.console import Console

    from rs_ondemand.bench.staging import bench_staging as run

    err = Console(stderr=True)
    result = run(size_mib=size_mib, rounds=rounds, log=lambda message: err.print(message, highlight=False))
    if as_json:
        print(json.dumps(result))
    else:
        _print_table(result)
    sys.stdout.flush()


@bench_app.command("orchestration")
def bench_orchestration(
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as one JSON object.")] = False,
    activities: Annotated[int, typer.Option("--activities", min=1, help="No-op activities per workflow.")] = 200,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Activities started together (parallel).")] = 20,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Rounds of each measure; the median is kept.")] = 3,
) -> None:
    """Orchestration overhead per activity: a workflow running N no-op activities (one after the other, and in
    parallel batches) vs awaiting the same function N times directly, in the same run.

    Brings the embedded stack up (or reuses the running one) and leaves it running; the bench runs its own
    worker on a task queue of its own.
    """
    from rs_ondemand.bench.orchestration import bench_orchestration as run

    result = run(activities=activities, batch=batch, rounds=rounds, log=_log())
    _output(result, as_json, _orchestration_table)


def _log() -> Callable[[str], None]:
    from rich.console import Console

    err = Console(stderr=True)
    return lambda message: err.print(message, highlight=False)


def _output(result: dict[str, Any], as_json: bool, table: Callable[[dict[str, Any]], None]) -> None:
    import json
    import sys

    if as_json:
        print(json.dumps(result))
    else:
        table(result)
    sys.stdout.flush()


def _caption(machine: dict[str, Any]) -> str:
    load = machine.get("load_avg")
    return f"{machine['cpus']} CPUs, {machine['mem_gib']} GiB, Python {machine['python']}" + (
        f", load {' '.join(map(str, load))}" if load else ""
    )


def _orchestration_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"orchestration: {result['activities']} no-op activities, median of {result['rounds']} (ms)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("per activity, sequential", f"{result['ms_per_activity']:.2f}")
    table.add_row(f"per activity, batches of {result['batch']}", f"{result['parallel_ms_per_activity']:.2f}")
    table.add_row("per activity, without the workflow's fixed cost", f"{result['marginal_ms_per_activity']:.2f}")
    table.add_row("workflow without activities", f"{result['empty_workflow_ms']:.1f}")
    table.add_row("baseline: direct call", f"{result['baseline_ms_per_call']:.6f}")
    table.add_row("Prefect, published (not measured)", f"{result['prefect_published_ms_per_task']}")
    table.caption = _caption(result["machine"])
    Console().print(table)


def _print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    targets = result["targets"]
    ok = {True: "[green]met[/green]", False: "[red]missed[/red]"}
    table = Table(title=f"staging benchmark: {result['size_mib']} MiB, best of {result['rounds']} (MiB/s, MiB)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_row("ours (workflow end to end)", f"{result['ours_mb_s']:.1f}", "")
    table.add_row("baseline (plain copy)", f"{result['baseline_mb_s']:.1f}", "")
    table.add_row("ratio", f"{result['ratio']:.3f}", f"≥ {targets['ratio']} {ok[result['ratio'] >= targets['ratio']]}")
    table.add_row("worker peak RSS", f"{result['peak_rss_mb']:.0f}", "")
    growth_ok = result["rss_growth_mb"] <= targets["rss_growth_mb"]
    table.add_row(
        "worker RSS growth", f"{result['rss_growth_mb']:.0f}", f"≤ {targets['rss_growth_mb']} {ok[growth_ok]}"
    )
    cpu = result.get("cpu_s_per_gib") or {}
    if cpu.get("ours_worker") is not None and cpu.get("baseline") is not None:
        table.add_row("CPU s/GiB: our worker / baseline", f"{cpu['ours_worker']:.2f} / {cpu['baseline']:.2f}", "")
    table.add_row("part size", f"{result['part_size_mib']:g}", "")
    machine = result["machine"]
    table.caption = f"{machine['cpus']} CPUs, {machine['mem_gib']} GiB, Python {machine['python']}"
    Console().print(table)
