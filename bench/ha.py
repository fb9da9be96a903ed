"""`zjobs bench ha`: zjobs on PostgreSQL beside SQLite, failover time, and failovers under load.

- throughput: the same no-op jobs on the SQLite store and on PostgreSQL, same run;
- failover: two brokers on one PostgreSQL; `kill -9` of the primary, then the
  time until a job submitted only to the standby has finished (so the standby
  took the lock, loaded the state, and a worker found it), several times;
- failovers under load: a steady load of `record` jobs (each appends its
  number to a file) while the primary is killed and restarted 5 times; then
  lost (must be 0), executed twice, failed without running, as in `faults`;
- the PostgreSQL-backed peers (PgQueuer, procrastinate) on the same no-op job.
"""

from __future__ import annotations

import os
import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from broker import Client

from . import scenarios
from .cluster import _free_port, _pings, _until
from .faults import DEAD_AFTER_S, HEARTBEAT_S, LIVENESS, FaultCluster, Load, _count, _executions
from .faults import _final_states as final_states

FAILOVERS = 5
Progress = Callable[[float], None]


class Pair(FaultCluster):
    """Two brokers, A and B, on one PostgreSQL store; workers and clients list both."""

    def __init__(self, data_dir: str, url: str) -> None:
        super().__init__(data_dir)
        self.url = url
        self.ends = {n: {r: f"tcp://127.0.0.1:{_free_port()}"
                         for r in ("frontend", "backend", "events")} for n in "AB"}
        for role in ("frontend", "backend", "events"):
            joined = ",".join(self.ends[n][role] for n in "AB")
            self.env[f"ZJOBS_{role.upper()}"] = joined
            setattr(self, role, joined)
        self.env["ZJOBS_STORE"] = url

    def start_one(self, name: str) -> None:
        env = {**self.env, **{f"ZJOBS_{r.upper()}": e for r, e in self.ends[name].items()}}
        saved, self.env = self.env, env
        try:
            self.start(f"broker-{name}", "broker")
        finally:
            self.env = saved

    def start_all(self) -> None:
        """A (primary once it serves), then B (standby) and two workers listing both."""
        self.start_one("A")
        _until(lambda: self.serves("A"), 30)
        self.start_one("B")
        self.start_worker(0)
        self.start_worker(1)
        self.wait_workers(2)

    def only(self, name: str, timeout: float = 0.5) -> Client:
        return Client(self.ends[name]["frontend"], timeout=timeout)

    def serves(self, name: str) -> bool:
        with self.only(name) as client:
            return _pings(client)

    def primary(self) -> str:
        _until(lambda: self.serves("A") or self.serves("B"), 30)
        return "A" if self.serves("A") else "B"

    def kill(self, name: str) -> None:
        proc = self.procs[f"broker-{name}"]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(15)


def _first_job_on(pair: Pair, name: str, since: float, limit_s: float = 60.0) -> float:
    """Seconds from `since` until a job submitted to broker `name` alone has finished."""
    n = 0
    while time.monotonic() - since < limit_s:
        with pair.only(name, timeout=0.3) as client:
            try:
                client.result(client.submit("noop", n), timeout=0.5)
                return time.monotonic() - since
            except TimeoutError:
                n += 1
    raise TimeoutError(f"broker {name} did not finish a job within {limit_s} s of the kill")


def failover_times(url: str, rounds: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="zjobs-ha-") as tmp:
        pair = Pair(str(Path(tmp) / "store"), url)
        try:
            pair.start_all()
            times = []
            for _ in range(rounds):
                primary = pair.primary()
                standby = "B" if primary == "A" else "A"
                time.sleep(1.0)  # settle: the standby is waiting on the lock
                started = time.monotonic()
                pair.kill(primary)
                times.append(round(_first_job_on(pair, standby, started), 3))
                pair.start_one(primary)  # back, as the standby
            return times
        finally:
            pair.close()


def failovers_under_load(url: str, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="zjobs-ha-") as tmp:
        pair = Pair(str(Path(tmp) / "store"), url)
        executions = str(Path(tmp) / "executions")
        try:
            pair.start_all()
            load = Load(pair.frontend, executions)
            load.start()
            for _ in range(rounds):
                time.sleep(1.5)
                primary = pair.primary()
                pair.kill(primary)
                pair.start_one(primary)
            time.sleep(1.5)
            load.stop()
            jobs = final_states(pair, load.acked)
        finally:
            pair.close()
        return _count(f"{rounds} failovers under load", load, jobs, _executions(executions),
                      0.0, 0.0)


def ha(n_jobs: int, progress: Progress) -> dict[str, Any]:
    from .peers import postgres_server, run_pg_peers

    sqlite = scenarios.throughput(n_jobs, 2, lambda f: progress(0.15 * f))
    with postgres_server() as url:
        postgres = scenarios.throughput(n_jobs, 2, lambda f: progress(0.15 + 0.15 * f),
                                        store=url)
    with postgres_server() as url:
        times = failover_times(url, FAILOVERS)
    progress(0.5)
    with postgres_server() as url:
        load = failovers_under_load(url, FAILOVERS)
    progress(0.7)
    peers = run_pg_peers(n_jobs, 2)
    progress(1.0)
    target = 2 * HEARTBEAT_S * LIVENESS + 1
    return {
        "throughput": [sqlite, postgres, *peers],
        "failover_s": times, "failover_median_s": round(statistics.median(times), 3),
        "failover_max_s": max(times), "failover_target_s": target,
        "under_load": load,
        "note": f"heartbeat {HEARTBEAT_S} s x liveness {LIVENESS} (silence detected after "
                f"{DEAD_AFTER_S} s); target: failover under 2 x interval x liveness + 1 s = "
                f"{target} s",
    }
