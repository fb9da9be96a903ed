"""`zjobs up`: a broker, the API and N workers as child processes; Ctrl-C stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import structlog

log = structlog.get_logger(__name__)

_BUS = ("frontend", "backend", "events", "heartbeat_interval", "heartbeat_liveness",
        "max_message", "curve_dir", "log_level")
_ROLE_OPTIONS = {
    "broker": _BUS + ("data_dir", "retention", "purge_interval", "event_window", "sync"),
    "worker": _BUS + ("queues", "concurrency", "tasks", "allow_exec", "allow_pickle",
                      "default_timeout", "shutdown_grace"),
    "api": _BUS + ("host", "port"),
}


def _argv(role: str, opts: dict[str, Any], extra: list[str] | None = None) -> list[str]:
    argv = [sys.executable, "-m", "broker.cli", role]
    for key in _ROLE_OPTIONS[role]:
        value = opts.get(key)
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value not in (None, False):
            argv += [flag, str(value)]
    if opts.get("log_json"):
        argv.append("--log-json")
    return argv + (extra or [])


def run_up(n_workers: int, opts: dict[str, Any]) -> int:
    """Start everything, wait for Ctrl-C (or a child dying), stop everything. Exit code."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: list[subprocess.Popen] = [subprocess.Popen(_argv("broker", opts), env=env)]
    name = opts.get("name") or f"{os.uname().nodename}-{os.getpid()}"
    for index in range(n_workers):
        procs.append(subprocess.Popen(_argv("worker", opts, ["--name", f"{name}-w{index + 1}"]),
                                      env=env))
    procs.append(subprocess.Popen(_argv("api", opts), env=env))
    stop = False

    def on_signal(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    log.info("zjobs.up", dashboard=f"http://{opts['host']}:{opts['port']}/",
             frontend=opts["frontend"], workers=n_workers, data_dir=opts["data_dir"])
    print(f"zjobs is up: dashboard http://{opts['host']}:{opts['port']}/  "
          f"(Ctrl-C stops everything)", flush=True)
    code = 0
    while not stop:
        for proc in procs:
            if proc.poll() is not None:
                log.error("zjobs.child_exited", pid=proc.pid, code=proc.returncode)
                stop, code = True, 1
        time.sleep(0.2)
    _stop_all(procs)
    return code


def _stop_all(procs: list[subprocess.Popen], grace_s: float = 8.0) -> None:
    """SIGTERM workers and API first, the broker last; SIGKILL whatever outlives the grace."""
    broker, others = procs[0], procs[1:]
    for group in (others, [broker]):
        for proc in group:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in group:
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    log.info("zjobs.stopped")
