"""PgQueuer: N worker processes (``pgqueuer.run``, as ``pgq run``) on a private PostgreSQL.

The schema is installed with ``pgq install --durability durable`` (PgQueuer's
default: logged tables, so nothing is lost in a crash), the server keeps
fsync and synchronous_commit on. Workers keep PgQueuer's
defaults (batch size 10, no ``max_concurrent_tasks``). The producer enqueues
with ``Queries.enqueue`` in batches of 500 (lists of entrypoints, payloads and
priorities: one INSERT per batch) and waits with ``CompletionWatcher`` until
every job id has the status ``successful``: PgQueuer keeps no return values.
"""

from __future__ import annotations

from bench.peers._common import (
    PeerUnavailable,
    drive,
    peer_bin,
    peer_env,
    peer_python,
    require_modules,
    result,
    run_once,
    started_all,
)

NOTE = (
    "{n} x `pgqueuer.run(factory)` (= `pgq run`, batch size 10), PostgreSQL fsync on, "
    "durable tables; Queries.enqueue in batches of 500, then CompletionWatcher until every job is "
    "'successful' (no result store)"
)


def run(n_jobs: int, n_workers: int, pg_url: str | None) -> dict:
    """Jobs/s of PgQueuer from the first batch enqueue to the last job completed."""
    if pg_url is None:
        raise PeerUnavailable("pgqueuer needs PostgreSQL")
    require_modules("pgqueuer", "asyncpg")
    env = peer_env(pg_url=pg_url)
    env["PGDSN"] = pg_url  # what the pgq CLI connects to
    pgq = str(peer_bin("pgq"))
    run_once([pgq, "install", "--durability", "durable"], env)
    # pgqueuer.run(factory), "as `pgq run` does, without the CLI": `pgq run` of
    # pgqueuer 1.6.0 crashes in its log set-up ('str' object has no attribute 'name').
    cmd = [str(peer_python()), "-m", "zjp_pgqueuer"]
    with started_all([cmd] * n_workers, env):
        record = drive("pgqueuer", n_jobs, n_workers, env)
    return result("pgqueuer", record, NOTE.format(n=n_workers))
