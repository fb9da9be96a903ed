"""zjobs: a fast, durable job broker on a ZeroMQ message bus.

The public face. Submit and await jobs with `Client` or `AsyncClient`; define tasks with
`task`, report from inside them with `progress` and `log`, ask for another attempt with
`Retry`; every error a caller can catch derives from `ZJobsError`.

    from zjobs import Client, task

The names load on first use, so a process (a worker, the broker) that never touches the
client does not load it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from zjobs.broker.wire.version import __version__

if TYPE_CHECKING:
    from zjobs.broker.client.client import AsyncClient, Client
    from zjobs.broker.wire.errors import (
        AuthError,
        BrokerError,
        BrokerUnreachable,
        FunctionError,
        InvalidJob,
        JobCancelled,
        JobFailed,
        ZJobsError,
    )
    from zjobs.worker.context import JobContext, Retry, current_job, log, progress
    from zjobs.worker.registry import task

_WHERE = {
    "Client": "zjobs.broker.client.client",
    "AsyncClient": "zjobs.broker.client.client",
    "AuthError": "zjobs.broker.wire.errors",
    "BrokerError": "zjobs.broker.wire.errors",
    "BrokerUnreachable": "zjobs.broker.wire.errors",
    "FunctionError": "zjobs.broker.wire.errors",
    "InvalidJob": "zjobs.broker.wire.errors",
    "JobCancelled": "zjobs.broker.wire.errors",
    "JobFailed": "zjobs.broker.wire.errors",
    "ZJobsError": "zjobs.broker.wire.errors",
    "JobContext": "zjobs.worker.context",
    "Retry": "zjobs.worker.context",
    "current_job": "zjobs.worker.context",
    "log": "zjobs.worker.context",
    "progress": "zjobs.worker.context",
    "task": "zjobs.worker.registry",
}

__all__ = ["AsyncClient", "AuthError", "BrokerError", "BrokerUnreachable", "Client",
           "FunctionError", "InvalidJob", "JobCancelled", "JobContext", "JobFailed", "Retry",
           "ZJobsError", "__version__", "current_job", "log", "progress", "task"]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (PEP 562)."""
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'zjobs' has no attribute {name!r}")
    value = getattr(import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
