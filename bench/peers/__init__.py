"""The job queues people use, on the same no-op job as zjobs and the relay.

Each peer lives in ``bench/peers/<name>.py`` with
``run(n_jobs, n_workers, url) -> dict``: ``url`` is a private redis for the
peers in NEEDS_REDIS, a private PostgreSQL (fsync on) for those in
NEEDS_POSTGRES, else None. The peers are installed in a
separate virtualenv by ``scripts/install_peers.sh`` (``.bench-venv/``, or
$ZJOBS_PEER_VENV), never in the main environment: nothing imported here
imports a peer package. Every worker and producer runs that virtualenv's
python, and every process a run starts is stopped when the run ends.

``run_peer`` never invents a number: a peer that cannot be installed or run
comes back as ``{"name": ..., "skipped": "<reason>"}``.
"""

from __future__ import annotations

import importlib
from typing import Any

from bench.peers._common import PeerUnavailable, peer_python, peer_venv, redis_server
from bench.peers._postgres import postgres_server

PEERS = ["celery", "rq", "dramatiq", "arq", "majortomo", "zjobs_mdp", "pgqueuer",
         "procrastinate"]
NEEDS_REDIS = {"celery", "rq", "dramatiq", "arq"}
NEEDS_POSTGRES = {"pgqueuer", "procrastinate"}
PG_PEERS = [name for name in PEERS if name in NEEDS_POSTGRES]

__all__ = [
    "NEEDS_POSTGRES",
    "NEEDS_REDIS",
    "PEERS",
    "PG_PEERS",
    "PeerUnavailable",
    "peer_python",
    "peer_venv",
    "postgres_server",
    "redis_server",
    "run_peer",
    "run_peers",
    "run_pg_peers",
]


def _run(name: str, n_jobs: int, n_workers: int) -> dict[str, Any]:
    module = importlib.import_module(f"bench.peers.{name}")
    if name in NEEDS_REDIS:
        with redis_server() as url:  # a fresh, private redis per peer
            return module.run(n_jobs, n_workers, url)
    if name in NEEDS_POSTGRES:
        with postgres_server() as url:  # a fresh, private PostgreSQL per peer
            return module.run(n_jobs, n_workers, url)
    return module.run(n_jobs, n_workers, None)


def run_peer(name: str, n_jobs: int, n_workers: int = 2) -> dict[str, Any]:
    """Run one peer; a result dict, or ``{"name", "skipped"}`` with the reason."""
    if name not in PEERS:
        return {"name": name, "skipped": f"unknown peer (known: {', '.join(PEERS)})"}
    try:
        peer_python()
        return _run(name, n_jobs, n_workers)
    except PeerUnavailable as exc:
        return {"name": name, "skipped": str(exc)}
    except Exception as exc:  # a peer that fails to run is reported, never given a number
        return {"name": name, "skipped": f"failed to run: {type(exc).__name__}: {exc}"}


def run_peers(
    n_jobs: int, n_workers: int = 2, names: list[str] | None = None
) -> list[dict[str, Any]]:
    """Run ``names`` (default: every peer) one after the other."""
    return [run_peer(name, n_jobs, n_workers) for name in names or PEERS]


def run_pg_peers(n_jobs: int, n_workers: int = 2) -> list[dict[str, Any]]:
    """Run just the PostgreSQL-backed peers (PG_PEERS), each on its own private server.

    Same records as ``run_peer``: ``{"name", "jobs", "seconds", "jobs_per_s",
    "workers", "note"}``, or ``{"name", "skipped"}`` with the reason.
    """
    return run_peers(n_jobs, n_workers, PG_PEERS)
