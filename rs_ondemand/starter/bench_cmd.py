"""`rs-ondemand bench staging|orchestration|scale|chaos`: benchmarks against the embedded stack (one JSON object with
`--json`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks against the embedded stack.")


@bench_app.command("staging")
def bench_staging(
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as one JSON object.")] = False,
    size_mib: Annotated[int, typer.Option("--size-mib", min=1, help="Size of the staged file in MiB.")] = 1024,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Rounds of each side; the median ratio is kept.")] = 2,
) -> None:
    """Our CADIP staging workflow end to end vs a plain station → S3 copy of the same bytes, plus worker RSS.

    Brings the embedded stack up (or reuses the running one) and leaves it running. Exits 0 whether or not
    the targets are met (`met` in the results says).
    """
    from rs_ondemand.bench.staging import bench_staging as run

    with stdout_to_stderr():
        result = run(size_mib=size_mib, rounds=rounds, log=_log())
    _output(result, as_json, _print_table)


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

    with stdout_to_stderr():
        result = run(activities=activities, batch=batch, rounds=rounds, log=_log())
    _output(result, as_json, _orchestration_table)


@bench_app.command("scale")
def bench_scale(
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as one JSON object.")] = False,
    sessions_chunks: Annotated[
        int, typer.Option("--sessions-chunks", min=0, help="Chunk files of the CADIP session (0: skip).")
    ] = 1000,
    prip_products: Annotated[
        int, typer.Option("--prip-products", min=0, help="Products in the PRIP window (0: skip).")
    ] = 10_000,
    dpr_requests: Annotated[
        int, typer.Option("--dpr-requests", min=0, help="DprProcessing requests at once (0: skip).")
    ] = 20,
    dask: Annotated[
        str, typer.Option("--dask", help="address: a Dask cluster the bench starts; local: a LocalCluster per run.")
    ] = "address",
    dpr_cold_baseline: Annotated[
        bool,
        typer.Option(
            "--dpr-cold-baseline",
            help="Run the DPR part again with a new eopf process per run (RS_EOPF_WARM_RUNNER=false), for the ratio.",
        ),
    ] = False,
) -> None:
    """History events per request (a CADIP session of many chunks, a PRIP window of many products), and many
    DprProcessing requests at once on one worker (wall time, per-request p50/p95, all published).

    Brings the embedded stack up (or reuses the running one) and leaves it running; the bench runs its own
    worker on a task queue of its own and removes what it staged.
    """
    from rs_ondemand.bench.scale import bench_scale as run

    if dask not in ("address", "local"):
        raise typer.BadParameter("must be address or local", param_hint="--dask")
    with stdout_to_stderr():
        result = run(
            session_chunks=sessions_chunks,
            prip_products=prip_products,
            dpr_requests=dpr_requests,
            dask="local" if dask == "local" else "address",
            dpr_cold_baseline=dpr_cold_baseline,
            log=_log(),
        )
    _output(result, as_json, _scale_table)


@bench_app.command("chaos")
def bench_chaos(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    minutes: Annotated[
        float, typer.Option("--minutes", min=0.1, help="Length of the soak (faults and requests).")
    ] = 10,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Draws the requests and the faults (a rerun replays them).")
    ] = 1,
) -> None:
    """A mixed workload under a seeded schedule of faults (workers, servers, stations killed or misbehaving),
    then the invariants that must always hold, each with its violations.

    Runs on an embedded stack of its own (free ports, taken down after): its servers are killed and restarted.
    Exit code 0 when no invariant is violated, 1 otherwise.
    """
    from rs_ondemand.bench.chaos.soak import bench_chaos as run

    with stdout_to_stderr():
        result = run(minutes=minutes, seed=seed, log=_log())
    _output(result, as_json, _chaos_table)
    if result["violations"]:
        raise typer.Exit(1)


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """While a bench runs, what is written to file descriptor 1 goes to stderr, so that stdout carries the JSON
    object only: the Temporal SDK's core (Rust) logs its warnings there, below Python's `sys.stdout`."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 (closed): nothing to keep clean
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _log() -> Callable[[str], None]:
    from rich.console import Console

    err = Console(stderr=True)
    return lambda message: err.print(message, highlight=False)


def _output(result: dict[str, Any], as_json: bool, table: Callable[[dict[str, Any]], None]) -> None:
    import json

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


def _scale_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="scale")
    table.add_column("request")
    table.add_column("workflows", justify="right")
    table.add_column("events", justify="right")
    table.add_column("largest history", justify="right")
    table.add_column("largest event (B)", justify="right")
    table.add_column("wall (s)", justify="right")
    for key, what in (("cadip_session", "chunks"), ("prip_window", "products")):
        part = result.get(key)
        if part:
            h = part["histories"]
            table.add_row(
                f"{key} ({part[what]} {what})",
                str(h["workflows"]),
                str(h["events"]),
                f"{h['largest_history_events']} ({h['largest_history_type']})",
                str(h["largest_event_bytes"]),
                f"{part['wall_s']:.1f}",
            )
    dpr = result.get("dpr")
    if dpr:
        p = dpr["per_request_s"]
        table.caption = (
            f"DPR: {dpr['requests']} requests in {dpr['wall_s']:.1f} s, p50 {p['p50']:.1f} s, p95 {p['p95']:.1f} s, "
            f"alone {dpr['single_request_s']:.1f} s, all published: {dpr['all_published']}\n"
            + _caption(result["machine"])
        )
    else:
        table.caption = _caption(result["machine"])
    Console().print(table)


def _chaos_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    faults = Table(
        title=f"chaos soak: seed {result['seed']}, {result['minutes']:g} min, settled in {result['settle_s']:.0f} s"
    )
    faults.add_column("fault")
    faults.add_column("struck", justify="right")
    faults.add_column("skipped or failed", justify="right")
    for kind, counts in sorted(result["faults"]["by_kind"].items()):
        faults.add_row(kind, str(counts.get("injected", 0)), str(sum(counts.values()) - counts.get("injected", 0)))
    console.print(faults)
    requests = Table(title=f"{result['requests']['total']} requests")
    requests.add_column("outcome")
    requests.add_column("requests", justify="right")
    for outcome, count in sorted(result["requests"]["by_outcome"].items()):
        requests.add_row(outcome, str(count))
    console.print(requests)
    invariants = Table(title=f"invariants: {result['violations']} violations")
    invariants.add_column("invariant")
    invariants.add_column("violations", justify="right")
    invariants.add_column("excused (S3 restart)", justify="right")
    for name, verdict in result["invariants"].items():
        invariants.add_row(name, str(verdict["violations"]), str(verdict["excused"]))
    invariants.caption = _caption(result["machine"])
    console.print(invariants)
    if result["violations"]:
        print(
            f"reproduce: {result['reproduce']['command']}; workflows: {', '.join(result['reproduce']['workflow_ids'])}"
        )


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
