"""`zjobs api`: the HTTP API under uvicorn, configured from the `api` settings.

The settings (flags and ZJOBS_* variables, `ZJOBS_API_TOKEN` among them) are
defined in broker/settings.py. uvicorn handles SIGINT/SIGTERM: open streams are ended, then
the lifespan closes the broker client and the SUB socket.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from zjobs.api.access_log import redact_access_log
from zjobs.api.app import create_app
from zjobs.api.context import Settings
from zjobs.api.malformed import JsonErrorsH11Protocol
from zjobs.api.processes import serve_processes
from zjobs.broker.wire.curve import client_curve
from zjobs.broker.wire.settings import API, config_values, default, for_role

GRACEFUL_SHUTDOWN_S = 5
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_api(opts: dict[str, Any]) -> None:
    """Serve the API until SIGINT/SIGTERM; `opts` are the `api` settings of broker/settings.py.

    With `api_workers` above 1, that many processes share the port (see api/processes.py)."""
    opts = _take_token(opts)
    n = int(opts.get("api_workers") or 1)
    if n <= 1:
        serve(opts, None)
        return
    listener = uvicorn.Config("zjobs.api.app:create_app", host=_host(opts),
                              port=_port(opts)).bind_socket()
    status = serve_processes(opts, n, listener, serve)
    if status:
        raise SystemExit(status)


def _host(opts: dict[str, Any]) -> str:
    return opts.get("host") or default("host")


def _port(opts: dict[str, Any]) -> int:
    port = opts.get("port")
    return int(default("port") if port is None else port)


def _take_token(opts: dict[str, Any]) -> dict[str, Any]:
    """`opts` with the API token, now out of our environment: no child of ours inherits it
    (our API processes get it in their `opts`)."""
    envvar = next(s.envvar for s in for_role(API) if s.name == "api_token")
    token = os.environ.pop(envvar, None)
    return {**opts, "api_token": opts.get("api_token") or token}


def serve(opts: dict[str, Any], listener: socket.socket | None) -> None:
    """One API process: on `listener` (shared with its siblings) or on its own socket."""
    _Server(_config(opts)).run(sockets=[listener] if listener is not None else None)


def _config(opts: dict[str, Any]) -> uvicorn.Config:
    values = config_values(API, opts, Settings)
    redact_access_log()
    app = create_app(**values, curve=client_curve(opts.get("curve_dir"), "api"),
                     max_body=opts.get("max_message") or default("max_message"))
    return uvicorn.Config(
        app, host=_host(opts), port=_port(opts),
        log_config=None, access_log=bool(opts.get("access_log")), lifespan="on",
        server_header=False, http=JsonErrorsH11Protocol,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


class _Server(uvicorn.Server):
    """uvicorn, except that a stop asked by SIGINT/SIGTERM ends with exit status 0.

    uvicorn re-raises the signal once it has shut down, so the process would
    die of it (or print click's "Aborted!") after a clean shutdown.
    """

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        ctx = getattr(getattr(self.config.app, "state", None), "ctx", None)  # our Starlette app
        if ctx is not None:
            ctx.stopping()  # held requests answer 503 now, not a traceback in 5 s

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
