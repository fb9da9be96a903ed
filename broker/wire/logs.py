"""structlog set-up for the entry points: readable on a terminal, JSON lines with --log-json.

The standard library's loggers (uvicorn's server and access lines, asyncio)
go through the same renderer, so `--log-json` makes every line JSON.
"""

from __future__ import annotations

import logging
import sys

import structlog

from zjobs.broker.wire.settings import default


def configure_logging(json: bool = False, level: str = default("log_level")) -> None:
    numeric = logging.getLevelName(level.upper())
    shared: list = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: object
    if json:
        shared.append(structlog.processors.dict_tracebacks)
        renderer = structlog.processors.JSONRenderer()
    else:
        tty = sys.__stderr__ is not None and sys.__stderr__.isatty()  # None: no console at all
        renderer = structlog.dev.ConsoleRenderer(colors=tty)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.__stderr__),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
