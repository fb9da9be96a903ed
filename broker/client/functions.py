"""`function` jobs on the client side: cloudpickle the calls, unpickle the results in order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

import cloudpickle

from zjobs.broker.wire.errors import FunctionError, JobCancelled, JobFailed
from zjobs.broker.wire.schema import JobState


def function_job(fn: Callable[..., Any], calls: list[tuple[tuple, dict]],
                 options: dict[str, Any]) -> dict[str, Any]:
    """A job that runs `fn(*args, **kwargs)` for each call, in one attempt, in order."""
    payload = cloudpickle.dumps({"fn": fn, "calls": calls})
    return {"kind": "function", "function": payload, **options}


def chunked(iterable: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(iterable)
    while chunk := list(islice(iterator, max(size, 1))):
        yield chunk


def map_jobs(fn: Callable[..., Any], iterable: Iterable[Any], chunksize: int,
             options: dict[str, Any]) -> tuple[list[dict[str, Any]], list[int]]:
    """One job per chunk of items (each item is fn's single argument); and each chunk's start."""
    jobs, starts, start = [], [], 0
    for chunk in chunked(iterable, chunksize):
        jobs.append(function_job(fn, [((item,), {}) for item in chunk], options))
        starts.append(start)
        start += len(chunk)
    return jobs, starts


def chunk_results(job: dict[str, Any], start: int) -> list[Any]:
    """The results of one map chunk; raises FunctionError with the item's global index."""
    if job["status"] == JobState.SUCCEEDED:
        return cloudpickle.loads(job["result"])
    if job["status"] == JobState.CANCELLED:
        raise JobCancelled(job)
    error = job.get("error") or {}
    if "index" in error:
        raise FunctionError(start + int(error["index"]), error)
    raise JobFailed(job)


def single_result(job: dict[str, Any]) -> Any:
    """The value of a one-call function job."""
    return cloudpickle.loads(job["result"])[0]
