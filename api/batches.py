"""A batch of jobs over REST (`POST /jobs` with `{"jobs": [...]}`), in bounded memory.

A 100,000-job batch validated as one pydantic model and answered from one
list of job dicts took the API from 62 to 480 MiB, and kept it: the objects
were freed, but the C allocator held on to the pages they had used. Here
each job is validated on its own and only its plain wire form is kept, and
the answer is fetched and encoded a slice at a time, so the peak is the
request's and the response's bytes and one slice of objects. What is freed
is given back to the system after large requests (`api.limits`).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from zjobs.api.errors import ApiError, summarise
from zjobs.api.render import dumps, job_json
from zjobs.broker.client.client import AsyncClient
from zjobs.broker.client.models import JobSpec

ANSWER_SLICE = 5000  # jobs fetched and encoded at a time


def batch_jobs(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The wire form of each job of `{"jobs": [...]}` (the shape `JobBatchIn` documents);
    ApiError(422) naming the first bad job's index and field."""
    extra = sorted(set(body) - {"jobs"})
    if extra:
        raise ApiError(422, f"{extra[0]}: Extra inputs are not permitted")
    jobs = body["jobs"]
    if not isinstance(jobs, list) or not jobs:
        raise ApiError(422, "jobs: must be a non-empty list of jobs")
    wire = []
    for index, job in enumerate(jobs):
        try:
            wire.append(JobSpec.model_validate(job).to_wire())
        except ValidationError as exc:
            raise ApiError(422, summarise(exc, f"jobs.{index}")) from None
    return wire


async def batch_answer(client: AsyncClient, ids: list[str]) -> bytes:
    """`{"jobs": [...]}` of the jobs of `ids`, in order, as JSON bytes."""
    parts = []
    for start in range(0, len(ids), ANSWER_SLICE):
        found = await client.wait_many(ids[start:start + ANSWER_SLICE], timeout=0)
        parts.append(dumps([job_json(job) for job in found])[1:-1])  # without its brackets
    return ('{"jobs":[' + ",".join(parts) + "]}").encode("utf-8")
