"""`zjobs api`: the HTTP API under uvicorn, configured from the CLI's options.

Besides the CLI's options (frontend, events, host, port, curve_dir,
max_message), three environment variables tune the API:
`ZJOBS_API_TOKEN` (bearer token; none: open), `ZJOBS_API_SSE_PING`
(seconds between SSE keep-alive comments, default 15) and
`ZJOBS_API_BROKER_TIMEOUT` (seconds before a silent broker means 503,
default 5). uvicorn handles SIGINT/SIGTERM: open streams are ended, then
the lifespan closes the broker client and the SUB socket.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from broker.curve import client_curve

from .app import create_app
from .context import MIB

GRACEFUL_SHUTDOWN_S = 5
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def run_api(opts: dict[str, Any]) -> None:
    """Serve the API until SIGINT/SIGTERM."""
    app = create_app(
        opts.get("frontend") or "tcp://127.0.0.1:5555",
        opts.get("events") or "tcp://127.0.0.1:5557",
        token=os.environ.get("ZJOBS_API_TOKEN"),
        curve=client_curve(opts.get("curve_dir"), "api"),
        max_body=opts.get("max_message") or 16 * MIB,
        sse_ping_s=_env_float("ZJOBS_API_SSE_PING", opts.get("sse_ping") or 15.0),
        broker_timeout_s=_env_float("ZJOBS_API_BROKER_TIMEOUT", 5.0),
    )
    config = uvicorn.Config(
        app, host=opts.get("host") or "127.0.0.1", port=int(opts.get("port") or 8000),
        log_config=None, access_log=bool(opts.get("access_log")), lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    _Server(config).run()


class _Server(uvicorn.Server):
    """uvicorn, except that a stop asked by SIGINT/SIGTERM ends with exit status 0.

    uvicorn re-raises the signal once it has shut down, so the process would
    die of it (or print click's "Aborted!") after a clean shutdown.
    """

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
