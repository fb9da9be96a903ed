"""`function` jobs on the worker: a cloudpickled callable mapped over its calls."""

from __future__ import annotations

from zjobs.worker.errors import FunctionCallError


def run_function(function: bytes) -> bytes:
    """A cloudpickled `{"fn", "calls": [(args, kwargs), ...]}`; returns the pickled result list.

    An exception in call `i` is re-raised as FunctionCallError carrying `i`.
    """
    import cloudpickle

    spec = cloudpickle.loads(function)
    results = []
    for index, (args, kwargs) in enumerate(spec["calls"]):
        try:
            results.append(spec["fn"](*args, **kwargs))
        except Exception as exc:
            raise FunctionCallError(index, exc) from exc
    return cloudpickle.dumps(results)
