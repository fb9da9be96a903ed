"""The task registry: `@task` registers a function under its name."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

REGISTRY: dict[str, Callable[..., Any]] = {}


def task(fn: F | None = None, *, name: str | None = None) -> Any:
    """Register `fn` as a task (`@task` or `@task(name="...")`); sync or `async def`."""

    def register(f: F) -> F:
        REGISTRY[name or f.__name__] = f
        return f

    return register(fn) if fn is not None else register


def is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn)


def load_tasks(modules: Iterable[str]) -> dict[str, Callable[..., Any]]:
    """Import the task modules (their `@task` decorators fill the registry)."""
    for module in modules:
        importlib.import_module(module)
    return REGISTRY


DEMO_MODULE = "worker.demo"


def task_modules(tasks: str | None) -> list[str]:
    """`--tasks a.b,c.d` as a list; the built-in demo tasks when none are given."""
    if not tasks:
        return [DEMO_MODULE]
    return [m.strip() for m in tasks.split(",") if m.strip()]
