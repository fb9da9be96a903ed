"""RQ tasks and producer for the peer benchmark (peer virtualenv only).

Workers: ``rq worker -u URL zjp`` (the default ``rq.Worker``, which forks a
work horse per job). Not ``--burst``: a burst worker quits as soon as the
queue is empty, so it would either exit before the producer's first submit
or have to be started after the last one, putting its start-up in the timing.
"""

from __future__ import annotations

import os
import time

from redis import Redis
from rq import Queue
from rq.job import Job, get_current_job
from zjp_common import RESULT_TIMEOUT_S, check_sum, emit, redis_url, wait_for_workers

QUEUE = "zjp"


def noop(x: int) -> int:
    return x


def ident() -> str:
    """The name of the worker that ran the job (with rq.Worker the job runs in a fork)."""
    job = get_current_job()
    return job.worker_name if job is not None and job.worker_name else str(os.getpid())


def _value(job: Job) -> int:
    result = job.latest_result(timeout=RESULT_TIMEOUT_S)  # blocks on the result stream
    if result is None or result.type != result.Type.SUCCESSFUL:
        raise RuntimeError(f"job {job.id} has no successful result")
    return result.return_value


def drive(n_jobs: int, n_workers: int) -> None:
    """Submit with ``Queue.enqueue``, collect with ``job.latest_result(timeout=...)``."""
    queue = Queue(QUEUE, connection=Redis.from_url(redis_url()))
    seen = wait_for_workers(
        lambda k: [_value(j) for j in [queue.enqueue(ident) for _ in range(k)]], n_workers
    )
    start = time.perf_counter()
    jobs = [queue.enqueue(noop, i) for i in range(n_jobs)]
    values = [_value(j) for j in jobs]
    seconds = time.perf_counter() - start
    check_sum(values, n_jobs)
    emit(seconds, n_jobs, seen)
