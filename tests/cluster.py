"""Real broker, worker and API processes on free loopback ports, for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zmq

from zjobs import Client
from zjobs.broker.wire.curve import client_curve

from .waiting import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent


class Cluster:
    def __init__(self, data_dir: Path, *, heartbeat_interval: float = 0.25,
                 heartbeat_liveness: int = 3, broker_args: list[str] | None = None,
                 curve_dir: Path | None = None) -> None:
        self.curve_dir = curve_dir
        self.data_dir = data_dir
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_liveness = heartbeat_liveness
        self.broker_args = broker_args or []
        self._choose_ports()
        self.broker: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}
        self.procs: list[subprocess.Popen] = []
        self.logs = data_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._clients: list[Client] = []

    # ------------------------------------------------------------ processes

    def env(self) -> dict[str, str]:
        return {
            **os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT),
            "ZJOBS_FRONTEND": self.frontend, "ZJOBS_BACKEND": self.backend,
            "ZJOBS_EVENTS": self.events, "ZJOBS_DATA_DIR": str(self.data_dir / "store"),
            "ZJOBS_HEARTBEAT_INTERVAL": str(self.heartbeat_interval),
            "ZJOBS_HEARTBEAT_LIVENESS": str(self.heartbeat_liveness),
            **({"ZJOBS_CURVE_DIR": str(self.curve_dir)} if self.curve_dir else {}),
        }

    def spawn(self, args: list[str], log_name: str, env: dict[str, str] | None = None
              ) -> subprocess.Popen:
        log = open(self.logs / f"{log_name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "zjobs", *args], cwd=ROOT,
                                env=env or self.env(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def _choose_ports(self) -> None:
        ports = [free_port() for _ in range(3)]
        self.frontend = f"tcp://127.0.0.1:{ports[0]}"
        self.backend = f"tcp://127.0.0.1:{ports[1]}"
        self.events = f"tcp://127.0.0.1:{ports[2]}"

    def start_broker(self, *extra: str) -> subprocess.Popen:
        """Start the broker and wait for its PING. A port chosen free can be taken before the
        broker binds it (by another test's connection, say): a broker that exits saying so is
        started again on other ports, if nothing else was started on these yet; any other
        early exit fails at once, with the broker's last lines."""
        for _ in range(3):
            broker = self.broker = self.spawn(["broker", *self.broker_args, *extra], "broker")
            with self.client() as client:
                wait_until(lambda b=broker: b.poll() is not None or _pings(client), 15,
                           message="broker to answer PING")
            if broker.poll() is None:
                return broker
            tail = (self.logs / "broker.log").read_text(errors="replace")[-2000:]
            if "in use" not in tail or self.procs != [broker]:
                raise AssertionError(f"the broker exited before it answered PING:\n{tail}")
            self.procs.remove(broker)
            self._choose_ports()
        raise AssertionError("the broker found its ports taken three times")

    def start_worker(self, name: str, *extra: str, wait: bool = True) -> subprocess.Popen:
        args = ["worker", "--name", name, "--tasks", "tests.tasks", *extra]
        if "--concurrency" not in extra:
            args += ["--concurrency", "2"]
        proc = self.spawn(args, f"worker-{name}")
        self.workers[name] = proc
        if wait:
            self.wait_for_worker(name)
        return proc

    def wait_for_worker(self, name: str, timeout: float = 20.0) -> dict[str, Any]:
        """The worker once it and all its sync slots have registered (`ready`)."""
        with self.client() as client:
            return wait_until(lambda: _worker(client, name), timeout,
                              message=f"worker {name} to register")

    def client(self, timeout: float = 10.0) -> Client:
        curve = client_curve(str(self.curve_dir)) if self.curve_dir else None
        client = Client(self.frontend, timeout=timeout, events_endpoint=self.events, curve=curve)
        self._clients.append(client)
        return client

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            proc.wait(15)

    def log_text(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for client in self._clients:
            client.close()
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            _killpg_quietly(proc.pid)


@contextmanager
def raw_dealer(endpoint: str) -> Iterator[zmq.Socket]:
    """A bare DEALER connected to `endpoint`, for tests that speak the frames themselves."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(endpoint)
    try:
        yield sock
    finally:
        sock.close(linger=0)


def _killpg_quietly(pgid: int) -> None:
    """Anything left in the process group (pool children) goes too."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _pings(client: Client) -> bool:
    try:
        return bool(client.ping(timeout=0.5))
    except TimeoutError:
        return False


def _worker(client: Client, name: str) -> dict[str, Any] | None:
    try:
        found = next((w for w in client.workers() if w["name"] == name), None)
    except TimeoutError:
        return None
    return found if found is not None and found["ready"] else None
