"""The task registry: `@task` registers a function under its name."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

REGISTRY: dict[str, Callable[..., Any]] = {}
POOLS = ("process", "thread")
THREADED: set[str] = set()  # sync tasks that asked to run in the worker's threads


def task(fn: F | None = None, *, name: str | None = None, pool: str = "process") -> Any:
    """Register `fn` as a task (`@task`, `@task(name="...")`); sync or `async def`.

    A sync task runs in the worker's process pool, where a timeout or cancel kills its
    process. `pool="thread"` runs it in a thread of the worker instead: no pipe and no
    pickling per job, so much cheaper for short tasks, but a thread cannot be killed: on a
    timeout or cancel the attempt ends at once and the thread finishes in the background.
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}, not {pool!r}")

    def register(f: F) -> F:
        key = name or f.__name__
        REGISTRY[key] = f
        if pool == "thread" and not is_async(f):
            THREADED.add(key)
        else:
            THREADED.discard(key)
        return f

    return register(fn) if fn is not None else register


def is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn)


def load_tasks(modules: Iterable[str]) -> dict[str, Callable[..., Any]]:
    """Import the task modules (their `@task` decorators fill the registry)."""
    for module in modules:
        importlib.import_module(module)
    return REGISTRY


def import_tasks(modules: list[str]) -> None:
    """Import the task modules a worker was given, from the current directory too.

    The current directory goes first on the import path, as `python -m` puts it: the
    user's `mymod.py` is found, and so are their own `worker.py` or `api/` when a task
    imports them (zjobs' modules all live under `zjobs`, so nothing of ours is shadowed).
    A module that does not import is a StartError that names it.
    """
    from zjobs.broker.wire.errors import StartError

    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any import failure of user code
            raise StartError(f"cannot import task module {module!r} ({type(exc).__name__}: "
                             f"{exc}); run from the directory that holds it, or fix --tasks"
                             ) from exc


DEMO_MODULE = "zjobs.worker.demo"

