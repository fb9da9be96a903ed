"""`--api-workers N`: N API processes serving one HTTP port.

One process is enough for REST; many SSE clients are not: each stream costs
the process that serves it CPU for every event, and one Python process has
one core. With `--api-workers N` this process binds the listening socket and
starts N children (spawned, not forked: a fork would copy the ZeroMQ
context) that accept on the same socket. The kernel spreads the connections
among them. Each child is a whole API of its own (a broker client, a SUB
socket and its event hub, the reachability ping), so a child's streams need
nothing from the others. The broker's STATS are the same through every child,
and so are the histograms, since every hub sees every event. Only the API's
own counters (events received, replayed, dropped) belong to the child that
answers the scrape.

This parent runs no event loop. It forwards SIGINT/SIGTERM to the children
and waits for them. If a child exits when it was not asked to, the parent
stops the others and exits 1, so the supervisor (`zjobs up`, systemd)
restarts the API as a whole. If the parent dies, even of SIGKILL, its
children get SIGTERM from the kernel (`PR_SET_PDEATHSIG`).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from typing import Any

import structlog

from zjobs.broker.wire.logs import configure_logging
from zjobs.broker.wire.orphans import die_with_parent
from zjobs.broker.wire.settings import default

log = structlog.get_logger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_WAIT_S = 15.0  # uvicorn's graceful shutdown is 5 s, SSE streams get 2 s more

Serve = Callable[[dict[str, Any], "socket.socket | None"], None]


def serve_processes(opts: dict[str, Any], n: int, listener: socket.socket,
                    serve: Serve) -> int:
    """Run `serve(opts, listener)` in `n` spawned children until a stop signal; exit status."""
    spawn = multiprocessing.get_context("spawn")
    children = [spawn.Process(target=_child, args=(serve, opts, listener, os.getpid()),
                              name=f"api-{i + 1}") for i in range(n)]
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        _signal_all(children, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        for child in children:
            child.start()
        listener.close()  # the children hold it now
        log.info("api.processes", count=n, pids=[c.pid for c in children])
        ready = wait([c.sentinel for c in children])  # the first child to end
        if not stopping:
            ended = next(c for c in children if c.sentinel in ready)
            ended.join()  # its pipe closes a moment before it can be reaped
            log.error("api.process_exited", name=ended.name, exitcode=ended.exitcode)
            _signal_all(children, signal.SIGTERM)
        _join_all(children)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if stopping else 1


def _child(serve: Serve, opts: dict[str, Any], listener: socket.socket, parent: int) -> None:
    die_with_parent(signal.SIGTERM, parent)
    configure_logging(bool(opts.get("log_json")), opts.get("log_level") or default("log_level"))
    serve(opts, listener)


def _signal_all(children: Sequence[multiprocessing.process.BaseProcess], sig: int) -> None:
    for child in children:
        if child.pid is not None and child.exitcode is None:
            try:
                os.kill(child.pid, sig)
            except ProcessLookupError:
                pass


def _join_all(children: Sequence[multiprocessing.process.BaseProcess]) -> None:
    for child in children:
        child.join(STOP_WAIT_S)
    _signal_all(children, signal.SIGKILL)  # a child stuck past its grace period
    for child in children:
        child.join()
