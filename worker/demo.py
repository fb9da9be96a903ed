"""The built-in demo tasks a worker loads when no `--tasks` is given."""

from __future__ import annotations

import time
from typing import Any

from zjobs.worker.context import progress
from zjobs.worker.registry import task


@task
def echo(*args: Any, **kwargs: Any) -> Any:
    """Return what it was given: one argument as itself, several as a list."""
    if kwargs:
        return {"args": list(args), "kwargs": kwargs}
    return args[0] if len(args) == 1 else list(args)


@task
def add(a: float, b: float) -> float:
    return a + b


@task
def sleep(seconds: float = 1.0) -> float:
    time.sleep(float(seconds))
    return float(seconds)


@task
def fail(message: str = "this task always fails") -> None:
    raise RuntimeError(message)


@task
def countdown(n: int = 5) -> str:
    """Logs a line and reports progress each second."""
    n = int(n)
    for i in range(n, 0, -1):
        print(f"{i}...")
        progress((n - i) / n, f"{i} to go")
        time.sleep(1)
    progress(1.0, "liftoff")
    print("liftoff!")
    return "liftoff"


@task
def noop(x: Any = None) -> Any:
    """Takes a value and returns it: the benchmark job."""
    return x
