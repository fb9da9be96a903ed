"""`zjobs bench ha`: zjobs on PostgreSQL beside SQLite, failover time, and failovers under load.

- throughput: the same no-op jobs on the SQLite store and on PostgreSQL, same run;
- failover: two brokers on one PostgreSQL; `kill -9` of the primary, then the
  time until a job submitted only to the standby has finished (so the standby
  took the lock, loaded the state, and a worker found it), several times;
- frozen-primary failover: the same, with the primary SIGSTOPped instead: its
  session stays open, so the standby must see its lease lapse, end its
  sessions and take the lock; then SIGCONT, and the old primary stands by;
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

from zjobs import AuthError, Client
from zjobs.broker.stores.pgstore import LEASE_TTL_S

from . import scenarios
from .cluster import _free_port, _pings, _until
from .faults import DEAD_AFTER_S, HEARTBEAT_S, LIVENESS, FaultCluster, Load, _count, _executions
from .faults import _final_states as final_states

FAILOVERS = 5
FROZEN_TARGET_S = 5.0
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
            try:
                return _pings(client)
            except AuthError:  # a handshake cut short by a broker closing its sockets
                return False

    def primary(self) -> str:
        _until(lambda: self.serves("A") or self.serves("B"), 30)
        return "A" if self.serves("A") else "B"

    def kill(self, name: str) -> None:
        proc = self.procs[f"broker-{name}"]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(15)

    def freeze(self, name: str, frozen: bool = True) -> None:
        """SIGSTOP broker `name` (a frozen VM, a stalled host); SIGCONT with `frozen=False`."""
        os.killpg(self.procs[f"broker-{name}"].pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def stood_down(self, name: str) -> bool:
        """Broker `name`, resumed, serves nothing and waits for the lock beside the primary."""
        return not self.serves(name) and _lock_sessions(self.url) >= 2


def _lock_sessions(url: str) -> int:
    """The brokers' lock sessions: the primary's and each standby's."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name "
                            "LIKE 'zjobs-broker-%-lock'").fetchone()[0]


def _first_job_on(pair: Pair, name: str, since: float, limit_s: float = 60.0) -> float:
    """Seconds from `since` until a job submitted to broker `name` alone has finished."""
    n = 0
    while time.monotonic() - since < limit_s:
        with pair.only(name, timeout=0.3) as client:
            try:
                client.result(client.submit("noop", n), timeout=0.5)
                return round(time.monotonic() - since, 3)
            except TimeoutError:
                n += 1
    raise TimeoutError(f"broker {name} did not finish a job within {limit_s} s of the kill")


def failover_times(url: str, rounds: int, how: str = "kill") -> list[tuple[float, float]]:
    """(seconds until the standby answers, seconds until a job submitted to the standby
    alone has finished) from stopping the primary (`how`: "kill" -9, or "freeze" with
    SIGSTOP), `rounds` times. A killed primary is started again, a frozen one resumed:
    either way it becomes the standby of the next round."""
    with tempfile.TemporaryDirectory(prefix="zjobs-ha-") as tmp:
        pair = Pair(str(Path(tmp) / "store"), url)
        try:
            pair.start_all()
            return [_one_failover(pair, how) for _ in range(rounds)]
        finally:
            pair.close()


def _one_failover(pair: Pair, how: str) -> tuple[float, float]:
    primary = pair.primary()
    standby = "B" if primary == "A" else "A"
    time.sleep(1.0)  # settle: the standby is waiting on the lock
    started = time.monotonic()
    if how == "kill":
        pair.kill(primary)
        took = _answers(pair, standby, started), _first_job_on(pair, standby, started)
        pair.start_one(primary)  # back, as the standby
        return took
    pair.freeze(primary)
    try:
        took = _answers(pair, standby, started), _first_job_on(pair, standby, started)
    finally:
        pair.freeze(primary, frozen=False)
    _until(lambda: pair.stood_down(primary), 30)  # it found its lease gone: a standby now
    return took


def _answers(pair: Pair, name: str, since: float, limit_s: float = 60.0) -> float:
    """Seconds from `since` until broker `name` answers a PING (fresh clients, short
    timeouts: a client's reconnect backoff does not blur the figure)."""
    while time.monotonic() - since < limit_s:
        with pair.only(name, timeout=0.1) as client:
            try:
                client.ping(timeout=0.1)
                return round(time.monotonic() - since, 3)
            except (TimeoutError, AuthError):
                pass
    raise TimeoutError(f"broker {name} did not answer within {limit_s} s")


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
        killed = failover_times(url, FAILOVERS)
    progress(0.4)
    with postgres_server() as url:
        frozen = failover_times(url, FAILOVERS, how="freeze")
    progress(0.55)
    with postgres_server() as url:
        load = failovers_under_load(url, FAILOVERS)
    progress(0.7)
    peers = run_pg_peers(n_jobs, 2)
    progress(1.0)
    target = 2 * HEARTBEAT_S * LIVENESS + 1
    return {
        "throughput": [sqlite, postgres, *peers],
        **_figures("failover", [job for _, job in killed]), "failover_target_s": target,
        **_figures("failover_answered", [answered for answered, _ in killed]),
        **_figures("failover_frozen", [job for _, job in frozen]),
        **_figures("failover_frozen_answered", [answered for answered, _ in frozen]),
        "failover_frozen_target_s": FROZEN_TARGET_S,
        "under_load": load,
        "note": f"heartbeat {HEARTBEAT_S} s x liveness {LIVENESS} (silence detected after "
                f"{DEAD_AFTER_S} s); target: failover under 2 x interval x liveness + 1 s = "
                f"{target} s after a kill -9, under {FROZEN_TARGET_S} s after a SIGSTOP (the "
                f"lease's TTL is {LEASE_TTL_S} s)",
    }


def _figures(name: str, times: list[float]) -> dict[str, Any]:
    return {f"{name}_s": times, f"{name}_median_s": round(statistics.median(times), 3),
            f"{name}_max_s": max(times)}
