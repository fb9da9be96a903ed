"""The /jobs routes: submit, list, inspect, cancel, retry, results, logs and artifacts."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from broker.jobs import TERMINAL
from broker.models import JobSpec

from .bodies import parse_json, parse_object
from .context import context
from .errors import ApiError
from .render import Json, job_json, result_json
from .schemas import JobBatchIn, ListQuery, ResultQuery, RetryAllIn
from .uploads import check_exec_files, exec_job_from_form


def _job_id(request: Request) -> str:
    return request.path_params["job_id"]


# ---------------------------------------------------------------- submit


async def submit(request: Request) -> Response:
    """A job (201 with the job), a batch `{"jobs": [...]}` (201 with the jobs) or a multipart
    `exec` job (201 with the job)."""
    ctx = context(request)
    jobs, batch = await _jobs_from(request, ctx.settings.max_body)
    for index, job in enumerate(jobs):
        check_exec_files(job, f"jobs.{index}.spec" if batch else "spec")
    ids = await ctx.client.submit_validated(jobs)
    if batch:
        found = await ctx.client.wait_many(ids, timeout=0)  # one round trip, answered at once
        return Json({"jobs": [job_json(job) for job in found]}, status_code=201)
    job = await ctx.client.get(ids[0])
    return Json(job_json(job), status_code=201, headers={"Location": f"/jobs/{quote(ids[0])}"})


async def _jobs_from(request: Request, max_body: int) -> tuple[list[dict[str, Any]], bool]:
    """Validated wire jobs of the request body, and whether it was a batch."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        job = await exec_job_from_form(request, max_body)
        return [JobSpec.model_validate(job).to_wire()], False
    body = parse_json(await request.body() or b"null")
    if not isinstance(body, dict):
        raise ApiError(422, 'body: must be a JSON object, a job or {"jobs": [...]}')
    if "jobs" in body:
        return [job.to_wire() for job in JobBatchIn.model_validate(body).jobs], True
    return [JobSpec.model_validate(body).to_wire()], False


# ---------------------------------------------------------------- inspect and act


async def list_jobs(request: Request) -> Response:
    """Newest first; `next_cursor` pages on."""
    params: dict[str, Any] = dict(request.query_params)
    statuses = [s.strip() for value in request.query_params.getlist("status")
                for s in value.split(",") if s.strip()]
    params["status"] = statuses or None
    query = ListQuery.model_validate(params)
    page = await context(request).client.list_page(**query.model_dump(exclude_none=True))
    return Json({"jobs": [job_json(job) for job in page["jobs"]],
                 "next_cursor": page.get("next_cursor")})


async def get_job(request: Request) -> Response:
    return Json(job_json(await context(request).client.get(_job_id(request))))


async def cancel_job(request: Request) -> Response:
    return Json(job_json(await context(request).client.cancel(_job_id(request))))


async def retry_job(request: Request) -> Response:
    return Json(job_json(await context(request).client.retry(_job_id(request))))


async def retry_all(request: Request) -> Response:
    """Run every failed (or cancelled) job again, of one queue or all: `{"retried": n}`."""
    query = RetryAllIn.model_validate(parse_object(await request.body()))
    retried = await context(request).client.retry_all(query.status, query.queue)
    return Json({"retried": retried})


async def job_result(request: Request) -> Response:
    """200 once the job has ended; 202 if it is still pending after `?wait=` seconds."""
    query = ResultQuery.model_validate(dict(request.query_params))
    ctx = context(request)
    job_id = _job_id(request)
    if query.wait > 0:  # held: answered 503 at once if the API stops meanwhile
        job = await ctx.until_shutdown(ctx.client.poll(job_id, timeout=query.wait))
    else:
        job = await ctx.client.get(job_id)
    status = 200 if job["status"] in TERMINAL else 202
    return Json(result_json(job), status_code=status)


async def job_logs(request: Request) -> Response:
    """Every line so far, joined with newlines."""
    lines = await context(request).client.logs(_job_id(request))
    return PlainTextResponse("\n".join(line["data"] for line in lines))


# ---------------------------------------------------------------- artifacts


async def list_artifacts(request: Request) -> Response:
    artifacts = await context(request).client.artifacts(_job_id(request))
    return Json({"artifacts": artifacts})


async def get_artifact(request: Request) -> Response:
    name = request.path_params["name"]
    found = await context(request).client.download(_job_id(request), name)
    filename = quote(name.rsplit("/", 1)[-1])
    return Response(found["data"], media_type=found["content_type"],
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"})
