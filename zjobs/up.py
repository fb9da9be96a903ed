"""`zjobs up`: a broker, the API and N workers as supervised child processes.

Children are started as `python -P -m zjobs ROLE ...`: `-P` keeps the
current directory off their import path, so a user's project with a folder
named `api` or `worker` cannot shadow zjobs' own packages (workers add the
current directory back, after zjobs', to import `--tasks`).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import structlog

from zjobs.broker.client.client import Client
from zjobs.broker.wire.curve import client_curve
from zjobs.broker.wire.errors import StartError, ZJobsError
from zjobs.broker.wire.settings import WORKER, default, forwarded, resolved
from zjobs.exposure import check_exposure
from zjobs.supervisor import Child, Supervisor

log = structlog.get_logger(__name__)

HEALTH_EVERY_S = 0.5


def _argv(role: str, opts: dict[str, Any], extra: list[str] | None = None) -> list[str]:
    """`python -P -m zjobs ROLE` with every setting of that role `up` was given."""
    given = {k: v for k, v in opts.items() if k != "name"}  # workers get their own names
    return [sys.executable, "-P", "-m", "zjobs", role, *forwarded(role, given),
            *(extra or [])]


# Imports the task modules as a worker does (from the current directory too), in a
# throwaway process: its `error:` line is the one `zjobs up` ends with.
TASKS_CHECK = """import sys
from zjobs.broker.wire.errors import StartError
from zjobs.worker.registry import import_tasks
try:
    import_tasks(sys.argv[1:])
except StartError as exc:
    print(f"error: {exc}", file=sys.stderr, flush=True)
    sys.exit(1)
"""


def children(n_workers: int, opts: dict[str, Any]) -> list[Child]:
    """The broker, the workers and the API; with --tasks, a check that the task modules
    import, which the workers wait for (the broker and the API start meanwhile)."""
    name = opts.get("name") or f"{os.uname().nodename}-{os.getpid()}"
    grace = float(opts.get("shutdown_grace") or 5.0) + 3.0
    modules = resolved(WORKER, opts).get("tasks") or []
    check = [Child("tasks-check", [sys.executable, "-P", "-c", TASKS_CHECK, *modules],
                   oneshot=True)] if modules and n_workers else []
    return [
        *check,
        Child("broker", _argv("broker", opts), stop_first=False),
        *(Child(f"worker-{i + 1}", _argv("worker", opts, ["--name", f"{name}-w{i + 1}"]),
                stop_grace_s=grace, held=bool(check)) for i in range(n_workers)),
        Child("api", _argv("api", opts), secrets=("ZJOBS_API_TOKEN",)),
    ]


def check_ports(opts: dict[str, Any]) -> None:
    """Fail at once, with the flag to change, when a port `zjobs up` needs is taken."""
    wanted = [(f"--{role}", opts[role]) for role in ("frontend", "backend", "events")]
    wanted.append(("--port", f"tcp://{opts['host']}:{opts['port']}"))
    for flag, endpoint in wanted:
        parts = urlsplit(endpoint)
        if parts.scheme != "tcp" or parts.port is None:
            continue
        host = "0.0.0.0" if parts.hostname in (None, "*") else parts.hostname
        if _in_use(host, parts.port):
            raise StartError(f"port {parts.port} ({flag} {endpoint}) is already in use; is another "
                          f"zjobs running? Stop it, or pick a free port with {flag}")


def _in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


class Announcer:
    """Prints "zjobs is up" once the API answers /health (it answers 200 once the broker does),
    `ready()` says the rest has started (the workers wait for the --tasks check) and
    `workers_up()` that the workers and their sync slots have registered: what is submitted
    then runs at once."""

    def __init__(self, host: str, port: int, ready: Callable[[], bool] = lambda: True,
                 workers_up: Callable[[], bool] = lambda: True) -> None:
        probe = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        self.dashboard = f"http://{host}:{port}/"
        self.health = f"http://{'[' + probe + ']' if ':' in probe else probe}:{port}/health"
        self.ready = ready
        self.workers_up = workers_up
        self.done = False
        self._next = 0.0

    def __call__(self) -> None:
        if self.done or time.monotonic() < self._next or not self.ready():
            return
        self._next = time.monotonic() + HEALTH_EVERY_S
        try:
            with urllib.request.urlopen(self.health, timeout=0.5) as answer:
                self.done = answer.status == 200
        except (urllib.error.URLError, OSError):
            return
        if self.done and not self.workers_up():
            self.done = False
        if self.done:
            print(f"zjobs is up: dashboard {self.dashboard}  (Ctrl-C stops everything)",
                  flush=True)


class WorkersUp:
    """Whether `n` workers, each with all its sync slots, have registered with the broker."""

    def __init__(self, frontend: str, n: int, curve_dir: str | None = None) -> None:
        self.frontend = frontend
        self.n = n
        self.curve_dir = curve_dir
        self._client: Client | None = None

    def __call__(self) -> bool:
        if self.n == 0:
            return True
        if self._client is None:
            self._client = Client(self.frontend, timeout=0.5,
                                  curve=client_curve(self.curve_dir))
        try:
            workers = self._client.workers()
        except (TimeoutError, ZJobsError):
            return False
        if sum(1 for w in workers if w.get("ready")) >= self.n:
            self._client.close()
            return True
        return False


def run_up(n_workers: int, opts: dict[str, Any]) -> int:
    """Supervise everything until SIGINT/SIGTERM; raises StartError or GaveUp. Exit code."""
    check_exposure(opts)
    check_ports(opts)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    announcer = Announcer(opts["host"], int(opts["port"]),
                          workers_up=WorkersUp(opts["frontend"], n_workers,
                                               opts.get("curve_dir")))
    supervisor = Supervisor(children(n_workers, opts), env,
                            opts.get("restart") or default("restart"), on_tick=announcer)
    announcer.ready = lambda: not supervisor.holding
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, supervisor.stop)
    log.info("zjobs.starting", dashboard=announcer.dashboard, frontend=opts["frontend"],
             workers=n_workers, data_dir=opts["data_dir"])
    supervisor.run()
    return 0
