"""`python -m bench.store_commit [--commits N] [--jobs N]`: what one turn's commit costs a job.

The broker writes each job twice in the common case: its insert in the turn that takes the
submit, its end in the turn that reads its RESULT. This times `Store.commit` alone for both,
a turn of `--jobs` plain jobs at a time, in a fresh SQLite store: µs of wall time per job
(the quartiles over the commits). Prints a table and writes bench/results/store-commit.json.
Compare checkouts by running it from each, in turn: the machine's noise is larger than most
changes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from zjobs.broker.core.submit import build_job
from zjobs.broker.stores.rows import blob
from zjobs.broker.stores.store import Store
from zjobs.broker.wire.jobs import Job, JobState
from zjobs.broker.wire.schema import plain_members

from .report import RESULTS

_SUCCEEDED = plain_members(JobState).SUCCEEDED


def _quartiles(samples: list[float]) -> dict[str, float]:
    q1, median, q3 = statistics.quantiles(samples, n=4)
    return {"q1_us": round(q1, 2), "median_us": round(median, 2), "q3_us": round(q3, 2)}


def _ended(job: Job, now: float) -> Job:
    """The job as a worker's RESULT leaves it in the broker: started, run, succeeded (a
    plain-string status, the result a `blob`, as the engine keeps them)."""
    job.status = _SUCCEEDED
    job.attempts = 1
    job.worker = "bench-worker"
    job.started_at = job.finished_at = now
    job.result = blob(b"\xc0")
    return job


def measure(commits: int, jobs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        store = Store(data_dir)
        try:
            inserts: list[float] = []
            updates: list[float] = []
            for turn in range(commits):
                now = time.time()
                batch = [build_job({"task": "noop_sync", "args": [i]}, now) for i in range(jobs)]
                for index, job in enumerate(batch):
                    job.order = turn * jobs + index + 1
                started = time.perf_counter()
                store.commit(batch, [], [], [], {"last_seq": turn})
                inserts.append((time.perf_counter() - started) / jobs * 1e6)
                ended = [_ended(job, now) for job in batch]
                started = time.perf_counter()
                store.commit([], ended, [], [], {"last_seq": turn})
                updates.append((time.perf_counter() - started) / jobs * 1e6)
        finally:
            store.close()
    return {"commits": commits, "jobs_per_commit": jobs,
            "insert": _quartiles(inserts), "update": _quartiles(updates)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.store_commit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=40, help="commits of each kind [40]")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per commit [1000]")
    args = parser.parse_args()
    result = measure(args.commits, args.jobs)
    table = Table(title=f"Store.commit, {args.jobs} jobs a commit, µs a job")
    for column in ("write", "q1", "median", "q3"):
        table.add_column(column, justify="right" if column != "write" else "left")
    for write in ("insert", "update"):
        row = result[write]
        table.add_row(write, *(f"{row[k]:.2f}" for k in ("q1_us", "median_us", "q3_us")))
    Console().print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "store-commit.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
