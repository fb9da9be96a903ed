"""RQ: N ``rq worker`` processes (not ``--burst``) on one queue.

A burst worker quits as soon as the queue is empty: started before the
producer it would exit at once, started after it its start-up would be timed.
So the workers are long-running, warmed up, and stopped after the run. They
are the default ``rq.Worker``, which forks a work horse for every job.
Results are collected with ``job.latest_result(timeout=...)`` in submit order.
"""

from __future__ import annotations

from bench.peers._common import (
    PeerUnavailable,
    drive,
    peer_bin,
    peer_env,
    require_modules,
    result,
    started_all,
)

QUEUE = "zjp"
DEFAULT_WORKER_CLASS = "rq.Worker"
NOTE = (
    "{n} x `rq worker --worker-class {cls}`{fork} (not --burst), "
    "enqueue() then job.latest_result(timeout)"
)


def _worker_cmd(redis_url: str, k: int, worker_class: str) -> list[str]:
    return [
        str(peer_bin("rq")), "worker", "--url", redis_url, "--name", f"zjp{k}",
        "--worker-class", worker_class, "--logging_level", "WARNING", "--quiet", QUEUE,
    ]  # fmt: skip


def run(
    n_jobs: int, n_workers: int, redis_url: str | None, worker_class: str = DEFAULT_WORKER_CLASS
) -> dict:
    """Jobs/s of RQ from the first ``enqueue`` to the last result.

    ``worker_class="rq.SimpleWorker"`` runs jobs in the worker process itself
    instead of a fork per job: faster, but not RQ's default.
    """
    if redis_url is None:
        raise PeerUnavailable("rq needs redis")
    require_modules("rq", "redis")
    env = peer_env(redis_url)
    cmds = [_worker_cmd(redis_url, k, worker_class) for k in range(n_workers)]
    with started_all(cmds, env):
        record = drive("rq", n_jobs, n_workers, env)
    fork = " (default: a forked work horse per job)" if worker_class == "rq.Worker" else ""
    return result("rq", record, NOTE.format(n=n_workers, cls=worker_class, fork=fork))
