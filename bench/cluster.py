"""A zjobs broker and workers as real processes on free loopback ports, for one benchmark."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zjobs import Client

from .cpu import CpuMeter

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BenchCluster:
    def __init__(self, data_dir: str) -> None:
        self.data_dir = Path(data_dir)
        ports = [_free_port() for _ in range(4)]
        self.frontend, self.backend, self.events = (f"tcp://127.0.0.1:{p}" for p in ports[:3])
        self.http_port = ports[3]
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "ZJOBS_FRONTEND": self.frontend,
                    "ZJOBS_BACKEND": self.backend, "ZJOBS_EVENTS": self.events,
                    "ZJOBS_DATA_DIR": data_dir, "ZJOBS_LOG_LEVEL": "warning",
                    "ZJOBS_TASKS": "bench.tasks", "ZJOBS_PORT": str(self.http_port)}
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "zjobs", *args], cwd=ROOT,
                                env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc
        return proc

    def client(self, timeout: float = 120.0) -> Client:
        return Client(self.frontend, timeout=timeout, events_endpoint=self.events)

    def start_workers(self, n: int, concurrency: int | None = None,
                      async_concurrency: int | None = None) -> None:
        """`n` workers with `concurrency` sync slots and `async_concurrency` async ones (None
        leaves the worker's default: the CPU count, and 100)."""
        limit = [] if concurrency is None else ["--concurrency", str(concurrency)]
        if async_concurrency is not None:
            limit += ["--async-concurrency", str(async_concurrency)]
        for i in range(n):
            self.start(f"worker-{i}", "worker", "--name", f"bench-{i}", *limit)
        with self.client() as client:  # every worker, and every one of its sync slots
            _until(lambda: sum(1 for w in client.workers() if w["ready"]) >= n, 60)

    def stop_workers(self) -> None:
        for name in [n for n in self.procs if n.startswith("worker-")]:
            _stop(self.procs.pop(name))

    def cpu_meter(self) -> CpuMeter:
        """CPU per job of the broker, the workers (with their children) and this client."""
        workers = [proc.pid for name, proc in self.procs.items() if name.startswith("worker-")]
        return CpuMeter({"broker": [self.procs["broker"].pid], "workers": workers})

    def broker_rss_peak_mib(self) -> float:
        """VmHWM of the broker: the peak resident set since it started."""
        return self._broker_status_mib("VmHWM")

    def broker_rss_mib(self) -> float:
        """VmRSS of the broker: its resident set now."""
        return self._broker_status_mib("VmRSS")

    def _broker_status_mib(self, field: str) -> float:
        status = Path(f"/proc/{self.procs['broker'].pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith(field + ":"))
        return int(line.split()[1]) / 1024

    def restart_broker(self) -> float:
        """Stop the broker (SIGTERM) and start it again on its store; the seconds from its
        start until it answers STATS."""
        _stop(self.procs.pop("broker"))
        started = time.perf_counter()
        self.start("broker", "broker")
        with self.client(timeout=0.5) as client:
            _until(lambda: _answers_stats(client), 600)
        return time.perf_counter() - started

    def close(self) -> None:
        for proc in reversed(list(self.procs.values())):
            _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _until(condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark cluster did not come up")
        time.sleep(0.05)


@contextmanager
def bench_cluster(workers: int = 2, concurrency: int | None = None, api: bool = False,
                  store: str | None = None, api_workers: int = 1,
                  mdp: str | None = None, async_concurrency: int | None = None
                  ) -> Iterator[BenchCluster]:
    """Broker on a fresh durable store (SQLite, or the PostgreSQL URL `store`), `workers`
    workers, optionally the API (in `api_workers` processes)."""
    with tempfile.TemporaryDirectory(prefix="zjobs-bench-") as data_dir:
        cluster = BenchCluster(data_dir)
        if store:
            cluster.env["ZJOBS_STORE"] = store
        if mdp:
            cluster.env["ZJOBS_MDP"] = mdp  # the broker's Majordomo socket
        try:
            cluster.start("broker", "broker")
            with cluster.client() as client:
                _until(lambda: _pings(client), 30)
            if workers:
                cluster.start_workers(workers, concurrency, async_concurrency)
            if api:
                cluster.start("api", "api", "--api-workers", str(api_workers))
                _until(lambda: _http_up(cluster.http_port), 30)
            yield cluster
        finally:
            cluster.close()


def _answers_stats(client: Client) -> bool:
    try:
        return bool(client.stats())
    except TimeoutError:
        return False


def _pings(client: Client) -> bool:
    try:
        return bool(client.ping(timeout=0.5))
    except TimeoutError:
        return False


def _http_up(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
