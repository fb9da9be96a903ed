"""majortomo: a pyzmq Majordomo (MDP/0.2) broker, N workers and a client.

No redis and no store: the closest peer to the relay and to zjobs' own
transport. The broker hands a request to an idle worker only (one job per
worker at a time) and heartbeats its workers. The producer keeps up to 1000
MDP requests in flight on one DEALER (see venv_side/zjp_majortomo.py).
"""

from __future__ import annotations

import subprocess

from bench.peers._common import (
    VENV_SIDE,
    drive,
    peer_env,
    peer_python,
    require_modules,
    result,
    started,
    started_all,
)

NOTE = (
    "majortomo.broker.Broker (logging WARNING) + {n} x majortomo.Worker, "
    "raw MDP/0.2 client DEALER with 1000 requests in flight, msgpack bodies"
)


def _read_url(proc: subprocess.Popen[bytes]) -> str:
    """The broker prints its URL once it is bound."""
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()  # the line, or EOF if it died
    if not line.startswith("tcp://"):
        raise RuntimeError(f"majortomo broker did not report its URL (got {line!r})")
    return line


def run(n_jobs: int, n_workers: int, redis_url: str | None = None) -> dict:
    """Jobs/s through a majortomo broker from the first request to the last reply."""
    require_modules("majortomo", "zmq", "msgpack")
    env = peer_env()
    script = str(VENV_SIDE / "zjp_majortomo.py")
    python = str(peer_python())
    with started([python, script, "broker"], env, stdout=subprocess.PIPE) as broker:
        url = _read_url(broker)
        with started_all([[python, script, "worker", url]] * n_workers, env):
            record = drive("majortomo", n_jobs, n_workers, env, url)
    return result("majortomo", record, NOTE.format(n=n_workers))
