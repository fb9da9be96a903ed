"""zjobs' Majordomo socket (`zjobs broker --mdp`) with majortomo's own workers and the same
raw MDP/0.2 client as the majortomo peer: the same run, with every request a durable job.

Beside the rate, the record has the broker process's CPU per request (`broker_cpu_us`, all
its threads, read from /proc over the producer's run): the part of the cost that is ours.
"""

from __future__ import annotations

from bench.cluster import bench_cluster
from bench.peers._common import (
    VENV_SIDE,
    drive,
    free_port,
    peer_env,
    peer_python,
    require_modules,
    result,
    started_all,
)

NOTE = (
    "`zjobs broker --mdp` (durable SQLite store) + {n} x majortomo.Worker, the majortomo "
    "peer's raw MDP/0.2 client DEALER with 1000 requests in flight; broker CPU {cpu} µs/request"
)


def run(n_jobs: int, n_workers: int, url: str | None = None) -> dict:
    """Jobs/s through zjobs' MDP socket, from the first request to the last reply."""
    require_modules("majortomo", "zmq", "msgpack")
    env = peer_env()
    mdp = f"tcp://127.0.0.1:{free_port()}"
    worker = [str(peer_python()), str(VENV_SIDE / "zjp_majortomo.py"), "worker", mdp]
    with bench_cluster(0, mdp=mdp) as cluster, started_all([worker] * n_workers, env):
        meter = cluster.cpu_meter().start()
        record = drive("majortomo", n_jobs, n_workers, env, mdp)
        cpu = meter.stop(record["jobs"])["broker"]
    return {**result("zjobs MDP socket", record, NOTE.format(n=n_workers, cpu=round(cpu))),
            "broker_cpu_us": cpu}
