"""The /jobs routes: submit, list, inspect, cancel, retry, results, logs and artifacts."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from zjobs.api.batches import batch_answer, batch_jobs
from zjobs.api.bodies import json_body, json_object
from zjobs.api.context import context
from zjobs.api.errors import ApiError, unanswered
from zjobs.api.render import Json, job_json, result_json
from zjobs.api.schemas import ListQuery, ResultQuery, RetryAllIn
from zjobs.api.uploads import check_exec_files, exec_job_from_form
from zjobs.broker.client.models import JobSpec
from zjobs.broker.wire import limits as lim
from zjobs.broker.wire.errors import BAD_REQUEST, BrokerError
from zjobs.broker.wire.jobs import TERMINAL
from zjobs.broker.wire.text import text_problem


def _job_id(request: Request) -> str:
    return request.path_params["job_id"]


# ---------------------------------------------------------------- submit

IDEMPOTENCY_KEY = "Idempotency-Key"
# a batch's jobs get the request's key and ":<index>": room for a million of them
REQUEST_KEY_MAX_LEN = lim.IDEMPOTENCY_KEY_MAX_LEN - 8


async def submit(request: Request) -> Response:
    """A job (201 with the job), a batch `{"jobs": [...]}` (201 with the jobs) or a multipart
    `exec` job (201 with the job).

    Every submit is idempotent: a job without an `idempotency_key` gets the request's
    `Idempotency-Key` (its header, or one made here), `KEY:INDEX` for a batch's jobs. The
    key comes back in the response's header, on a 504 too: the broker did not answer, so
    the jobs may exist, and the same request sent again with that header creates none twice.
    """
    ctx = context(request)
    key = _request_key(request)
    jobs, batch = await _jobs_from(request, ctx.settings.max_body)
    for index, job in enumerate(jobs):
        check_exec_files(job, f"jobs.{index}.spec" if batch else "spec")
        if job.get("idempotency_key") is None:
            job["idempotency_key"] = f"{key}:{index}" if batch else key
    headers = {IDEMPOTENCY_KEY: key}
    try:
        ids = await ctx.client.submit_validated(jobs)
        del jobs  # a large batch: its objects go before the answer's come
        if batch:
            return Response(await batch_answer(ctx.client, ids), status_code=201,
                            media_type="application/json", headers=headers)
        job = await ctx.client.get(ids[0])
    except TimeoutError as exc:
        raise unanswered(exc, headers) from None
    return Json(job_json(job), status_code=201,
                headers={"Location": f"/jobs/{quote(ids[0])}", **headers})


def _request_key(request: Request) -> str:
    """The request's Idempotency-Key header, or a new key."""
    given = request.headers.get(IDEMPOTENCY_KEY)
    if given is None:
        return str(uuid.uuid4())
    problem = text_problem(given, REQUEST_KEY_MAX_LEN)
    if problem is not None:
        raise ApiError(400, f"the {IDEMPOTENCY_KEY} header {problem}")
    return given


async def _jobs_from(request: Request, max_body: int) -> tuple[list[dict[str, Any]], bool]:
    """Validated wire jobs of the request body, and whether it was a batch."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        job = await exec_job_from_form(request, max_body)
        return [JobSpec.model_validate(job).to_wire()], False
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ApiError(422, 'body: must be a JSON object, a job or {"jobs": [...]}')
    if "jobs" in body:
        return batch_jobs(body), True
    return [JobSpec.model_validate(body).to_wire()], False


# ---------------------------------------------------------------- inspect and act


async def list_jobs(request: Request) -> Response:
    """Newest first; `next_cursor` pages on."""
    params: dict[str, Any] = dict(request.query_params)
    statuses = [s.strip() for value in request.query_params.getlist("status")
                for s in value.split(",") if s.strip()]
    params["status"] = list(dict.fromkeys(statuses)) or None  # each once
    query = ListQuery.model_validate(params)
    try:
        page = await context(request).client.list_page(**query.model_dump(exclude_none=True))
    except BrokerError as exc:  # every field is valid but the cursor, which only it can check
        if exc.code == BAD_REQUEST:
            raise ApiError(400, exc.message) from None
        raise
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
    query = RetryAllIn.model_validate(await json_object(request))
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
