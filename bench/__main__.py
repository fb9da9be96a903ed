"""`zjobs bench` / `python -m bench [SCENARIO ...]`: run, print a table, save to bench/results/.

Scenarios (all by default, or name some): throughput, throughput-sync, throughput-thread,
user and user-submit (plain `def` tasks, default workers, `await result()` per job), latency,
limit (the bare pyzmq relay), peers (Celery, RQ, Dramatiq, arq, majortomo,
PgQueuer, procrastinate: `bash scripts/install_peers.sh` first), scale, http,
faults (what a killed, stalled or late process and garbage input cost under
load), ha (PostgreSQL beside SQLite, failover time, failovers under load, the
PostgreSQL peers). A scenario run alone
updates its part of bench/results/latest.json and the tables and charts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from . import report, scenarios

SCENARIOS = ("throughput", "throughput-sync", "throughput-thread", "user", "user-submit",
             "latency", "limit", "peers",
             "scale", "http", "faults", "ha")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="zjobs bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []], metavar="SCENARIO",
                        help=f"any of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("-n", "--jobs", type=int, default=100_000,
                        help="jobs for throughput, limit and peers [100000]")
    parser.add_argument("--peer-jobs", type=int, default=None,
                        help="jobs for each peer [same as --jobs]")
    parser.add_argument("--workers", type=int, default=2, help="worker processes [2]")
    parser.add_argument("--latency-jobs", type=int, default=2000)
    parser.add_argument("--scale", default="100000,2000000,10000000",
                        help="queued sizes for the scale scenario (a size the disk cannot "
                             "hold is not run)")
    parser.add_argument("--sse-clients", type=int, default=100)
    parser.add_argument("--sse-jobs", type=int, default=10_000)
    parser.add_argument("--rest-jobs", type=int, default=5000)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes everywhere: a smoke run, not a measurement")
    return parser.parse_args(argv)


def _quick(args: argparse.Namespace) -> None:
    args.jobs, args.latency_jobs, args.scale = 5000, 300, "1000,10000"
    args.sse_clients, args.sse_jobs, args.rest_jobs = 20, 1000, 500


def _plan(args: argparse.Namespace) -> list[tuple[str, str, Callable[[Callable], Any]]]:
    from . import relay

    n, w = args.jobs, args.workers
    peer_n = args.peer_jobs or n
    plan = {
        "throughput": ("throughput", lambda p: scenarios.throughput(n, w, p)),
        "throughput-sync": ("throughput_sync", lambda p: scenarios.throughput(
            min(n, 20_000), w, p, task="noop_sync", concurrency=2)),
        "throughput-thread": ("throughput_thread", lambda p: scenarios.throughput(
            min(n, 20_000), w, p, task="noop_thread", concurrency=2)),
        "user": ("user_case", lambda p: scenarios.user_case(min(n, 20_000), w, p)),
        "user-submit": ("user_submit", lambda p: scenarios.user_case(
            min(n, 20_000), w, p, per_job=True)),
        "latency": ("latency", lambda p: scenarios.latency(args.latency_jobs, w, p)),
        "limit": ("relay", lambda p: _relay(relay, n, w, args.latency_jobs)),
        "peers": ("peers", lambda p: _peers(peer_n, w, p)),
        "scale": ("scale", lambda p: scenarios.scale(
            [int(s) for s in args.scale.split(",")], w, p)),
        "http": ("http", lambda p: scenarios.http(args.rest_jobs, 16, args.sse_clients,
                                                  args.sse_jobs, p)),
        "faults": ("faults", _faults),
        "ha": ("ha", lambda p: _ha(min(n, 20_000), p)),
    }
    chosen = args.scenarios or list(SCENARIOS)
    return [(name, *plan[name]) for name in chosen]


def _relay(relay: Any, n: int, workers: int, latency_jobs: int) -> dict[str, Any]:
    result = relay.run_relay_throughput(n, workers)
    result["note"] = "bare pyzmq relay: no store, no bookkeeping (the limit)"
    result["latency"] = relay.run_relay_latency(latency_jobs, workers)
    return result


def _faults(progress: Callable[[float], None]) -> dict[str, Any]:
    from .faults import faults

    return faults(progress)


def _ha(n: int, progress: Callable[[float], None]) -> dict[str, Any]:
    from .ha import ha

    return ha(n, progress)


def _peers(n: int, workers: int, progress: Callable[[float], None]) -> list[dict[str, Any]]:
    from .peers import PEERS, run_peer

    results = []
    for index, name in enumerate(PEERS):
        results.append(run_peer(name, n, workers))
        progress((index + 1) / len(PEERS))
    return results


def _load_previous() -> dict[str, Any]:
    path = report.RESULTS / "latest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.quick:
        _quick(args)
    console = Console()
    results = _load_previous()
    columns = (TextColumn("[bold]{task.description:<16}"), BarColumn(), TaskProgressColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        for name, key, run in _plan(args):
            handle = bar.add_task(name, total=1.0)
            results[key] = run(lambda f, h=handle: bar.update(h, completed=f))
            bar.update(handle, completed=1.0)
    if "relay" in results and "latency" in results["relay"]:
        results["relay_latency"] = {"jobs": results["relay"]["latency"].get("jobs"),
                                    **results["relay"]["latency"]}
    results["meta"] = report.meta("zjobs bench " + " ".join(sys.argv[1:] if argv is None
                                                              else argv))
    report.show(results, console)
    for path in report.save(results):
        console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
