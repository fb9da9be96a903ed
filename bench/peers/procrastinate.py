"""procrastinate: N ``procrastinate worker`` processes on a private PostgreSQL.

The schema is applied with ``procrastinate schema --apply``; the server keeps
fsync and synchronous_commit on. Workers keep procrastinate's defaults
(``--concurrency`` 1, LISTEN/NOTIFY). The producer defers with
``Task.batch_defer_async`` in batches of 500 (one INSERT per batch) and, in
submit order, polls ``JobManager.get_job_status_async`` (every 5 ms while the
job is unfinished) until every job has ``succeeded``: procrastinate keeps no
return values.
"""

from __future__ import annotations

from bench.peers._common import (
    PeerUnavailable,
    drive,
    peer_bin,
    peer_env,
    require_modules,
    result,
    run_once,
    started_all,
)

APP = "zjp_procrastinate.app"
NOTE = (
    "{n} x `procrastinate worker` (concurrency 1), PostgreSQL fsync on; "
    "batch_defer_async in batches of 500, then get_job_status_async (5 ms poll) in order "
    "until every job 'succeeded' (no result store)"
)


def run(n_jobs: int, n_workers: int, pg_url: str | None) -> dict:
    """Jobs/s of procrastinate from the first batch defer to the last job finished."""
    if pg_url is None:
        raise PeerUnavailable("procrastinate needs PostgreSQL")
    require_modules("procrastinate", "psycopg", "psycopg_pool")
    env = peer_env(pg_url=pg_url)
    cli = str(peer_bin("procrastinate"))
    run_once([cli, "--app", APP, "schema", "--apply"], env)
    cmd = [cli, "--app", APP, "worker", "--queues", "zjp,zjp_ident"]
    with started_all([cmd] * n_workers, env):
        record = drive("procrastinate", n_jobs, n_workers, env)
    return result("procrastinate", record, NOTE.format(n=n_workers))
