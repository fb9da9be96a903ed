"""Helpers shared by the peer drivers; runs inside the peer virtualenv.

This directory is put on PYTHONPATH of the peer processes. Its modules carry
a ``zjp_`` prefix so that none of them shadows the package it drives (a file
named ``celery.py`` here would hide the real Celery).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

WARMUP_TIMEOUT_S = 120.0
RESULT_TIMEOUT_S = 120


def redis_url() -> str:
    """The private redis the benchmark started for this run."""
    return os.environ["ZJP_REDIS_URL"]


def pg_url() -> str:
    """The private PostgreSQL the benchmark started for this run."""
    return os.environ["ZJP_PG_URL"]


def mark_worker(directory: str) -> None:
    """The identity job of a queue without a result store: leave this worker's pid in a file."""
    with open(os.path.join(directory, str(os.getpid())), "w"):
        pass


def marked_workers(directory: str) -> list[str]:
    """The pids ``mark_worker`` left in ``directory``."""
    return os.listdir(directory)


def check_statuses(statuses: Iterable[str], done: str, n_jobs: int) -> None:
    """For queues that keep no return values: every job must have ended ``done``."""
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    if counts.get(done, 0) != n_jobs:
        raise RuntimeError(f"not every job ended {done!r}: {counts}")


def wait_for_workers(identify: Callable[[int], Iterable[Any]], n_workers: int) -> int:
    """Run identity jobs until ``n_workers`` distinct workers have answered.

    ``identify(k)`` submits ``k`` jobs that each return the identity of the
    worker that ran it, and returns those identities once all are back. This
    keeps start-up (imports, connections, forks) out of the timed run.
    """
    seen: set[Any] = set()
    deadline = time.monotonic() + WARMUP_TIMEOUT_S
    while len(seen) < n_workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(seen)} of {n_workers} workers answered")
        seen.update(identify(4 * n_workers))
    return len(seen)


def check_sum(values: Iterable[int], n_jobs: int) -> None:
    """Fail loudly rather than report a number for wrong results."""
    total = sum(values)
    if total != n_jobs * (n_jobs - 1) // 2:
        raise RuntimeError(f"wrong results: sum {total}")


def emit(seconds: float, n_jobs: int, workers_seen: int, **extra: Any) -> None:
    """Print the one JSON line the main-environment side reads."""
    record = {"seconds": seconds, "jobs": n_jobs, "workers_seen": workers_seen, **extra}
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
