"""The OpenAPI 3.1 document (`/openapi.json`) and a self-contained docs page (`/docs`).

The document is built from one table of operations below and the pydantic
models of `api.schemas` (JSON Schema 2020-12, which OpenAPI 3.1 uses); a
test checks that every route of the app is in it. `/docs` is a small page
that renders the operations from `/openapi.json` with plain JavaScript:
Swagger UI would need a CDN, which an offline install does not have.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from zjobs.api.jobs import REQUEST_KEY_MAX_LEN
from zjobs.api.meta import Meta
from zjobs.api.render import Json
from zjobs.api.schemas import DOCUMENTED, EventsQuery, ListQuery, ResultQuery
from zjobs.broker.wire.limits import SEQ_MAX
from zjobs.broker.wire.version import __version__

SSE = "text/event-stream"
ERROR_TEXT = {
    400: "malformed JSON", 401: "missing or wrong token", 408: "the body stalled",
    404: "no such job, worker, schedule or route",
    409: "the job is in the wrong state", 413: "body over the size limit",
    415: "a body not sent as application/json", 422: "invalid fields",
    503: "the broker is not reachable: the request was not sent, nothing was done",
    504: "the broker did not answer in time: the request may have been carried out",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}}


def _query(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    return [{"name": name, "in": "query", "required": False, "schema": prop,
             "description": prop.get("description", "")}
            for name, prop in schema["properties"].items()]


JOB_ID = _path_param("job_id", "the job's id")
SCHEDULE_NAME = _path_param("name", "the schedule's name")
QUEUE_NAME = _path_param("name", "the queue's name")
LAST_EVENT_ID = {"name": "Last-Event-ID", "in": "header", "required": False,
                 "schema": {"type": "integer", "minimum": 0, "maximum": SEQ_MAX},
                 "description": "resume after this id (seq, or line for log streams)"}
IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "schema": {"type": "string", "maxLength": REQUEST_KEY_MAX_LEN},
                   "description": "send the key of an earlier submit again to get its jobs, "
                                  "not new ones (its jobs without an idempotency_key get it, "
                                  "KEY:INDEX in a batch); without one, the API makes one"}
KEY_HEADER = {"Idempotency-Key": {"description": "the submit's key: send it again with the "
                                                 "same request to retry it safely",
                                  "schema": {"type": "string"}}}


def _op(summary: str, tag: str, ok: dict[str, Any], *, status: int = 200,
        params: list[dict[str, Any]] | None = None, body: dict[str, Any] | None = None,
        errors: tuple[int, ...] = (503,), extra: dict[str, Any] | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {str(status): ok, **(extra or {})}
    if 503 in errors:  # not sent, or sent and not answered
        errors = (*errors, 504)
    if body:
        errors = (*errors, 408, 415)
    for code in (401, *errors):
        responses[str(code)] = _json(_ref("ErrorBody"), ERROR_TEXT[code])
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    return op


def _sse(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {SSE: {"schema": {"type": "string", "description":
                                          "id: seq / event: type / data: JSON"}}}}


SUBMIT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"oneOf": [_ref("JobSpec"), _ref("JobBatchIn")]}},
        "multipart/form-data": {"schema": _ref("ExecForm")},
    },
}

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/jobs"): _op(
        "Submit a job, a batch, or an exec job with files (multipart)", "jobs",
        {**_json({"oneOf": [_ref("Job"), _ref("JobBatch")]}, "the job, or {jobs} for a batch"),
         "headers": KEY_HEADER}, status=201, body=SUBMIT_BODY,
        params=[IDEMPOTENCY_KEY], errors=(400, 413, 422, 503)),
    ("get", "/jobs"): _op("List jobs, newest first", "jobs", _json(_ref("JobPage"), "a page"),
                          params=_query(ListQuery), errors=(400, 422, 503)),
    ("post", "/jobs/retry"): _op(
        "Re-run every failed (or cancelled) job, of one queue or all", "jobs",
        _json(_ref("Retried"), "how many were queued again"),
        body={"required": False, "content": {"application/json": {"schema": _ref(
            "RetryAllIn")}}}, errors=(422, 503)),
    ("get", "/jobs/{job_id}"): _op("One job", "jobs", _json(_ref("Job"), "the job"),
                                   params=[JOB_ID], errors=(404, 503)),
    ("post", "/jobs/{job_id}/cancel"): _op(
        "Cancel a queued or running job", "jobs", _json(_ref("Job"), "the cancelled job"),
        params=[JOB_ID], errors=(404, 409, 503)),
    ("post", "/jobs/{job_id}/retry"): _op(
        "Re-run a failed or cancelled job", "jobs", _json(_ref("Job"), "the requeued job"),
        params=[JOB_ID], errors=(404, 409, 503)),
    ("get", "/jobs/{job_id}/result"): _op(
        "The job's result, waiting up to ?wait= seconds", "jobs",
        _json(_ref("JobResult"), "the job has ended"), params=[JOB_ID, *_query(ResultQuery)],
        errors=(404, 422, 503),
        extra={"202": _json(_ref("JobResult"), "still pending after waiting")}),
    ("get", "/jobs/{job_id}/logs"): _op(
        "The job's log so far", "jobs",
        {"description": "lines joined with newlines",
         "content": {"text/plain": {"schema": {"type": "string"}}}},
        params=[JOB_ID], errors=(404, 503)),
    ("get", "/jobs/{job_id}/logs/stream"): _op(
        "SSE: every log line from the first, then live; `end` when the job ends", "streams",
        _sse("event: log (id = line), then event: end"), params=[JOB_ID, LAST_EVENT_ID],
        errors=(400, 404, 503)),
    ("get", "/jobs/{job_id}/events"): _op(
        "SSE: the job's lifecycle events; `end` after the terminal one", "streams",
        _sse("job.* events, then event: end"), params=[JOB_ID, LAST_EVENT_ID],
        errors=(400, 404, 503)),
    ("get", "/jobs/{job_id}/artifacts"): _op(
        "What an exec job produced", "jobs", _json(_ref("ArtifactList"), "the artifacts"),
        params=[JOB_ID], errors=(404, 503)),
    ("get", "/jobs/{job_id}/artifacts/{name}"): _op(
        "Download one artifact", "jobs",
        {"description": "the file, with its content type",
         "content": {"application/octet-stream": {"schema": {"type": "string",
                                                              "format": "binary"}}}},
        params=[JOB_ID, _path_param("name", "the artifact's path under out/")],
        errors=(404, 503)),
    ("get", "/schedules"): _op("Every schedule, by name", "schedules",
                               _json(_ref("ScheduleList"), "the schedules")),
    ("put", "/schedules/{name}"): _op(
        "Create or replace a schedule (cron or every_s)", "schedules",
        _json(_ref("Schedule"), "the schedule"), params=[SCHEDULE_NAME],
        body={"required": True, "content": {"application/json": {"schema": _ref(
            "ScheduleIn")}}}, errors=(400, 422, 503)),
    ("get", "/schedules/{name}"): _op("One schedule", "schedules",
                                      _json(_ref("Schedule"), "the schedule"),
                                      params=[SCHEDULE_NAME], errors=(404, 503)),
    ("delete", "/schedules/{name}"): _op(
        "Remove a schedule", "schedules", {"description": "removed"}, status=204,
        params=[SCHEDULE_NAME], errors=(404, 503)),
    ("get", "/events"): _op(
        "SSE: every event, or those of ?types= prefixes", "streams", _sse("events by seq"),
        params=[*_query(EventsQuery), LAST_EVENT_ID], errors=(400, 422, 503)),
    ("get", "/events/workers/{name}"): _op(
        "SSE: one worker's events", "streams", _sse("events whose worker is {name}"),
        params=[_path_param("name", "worker name"), LAST_EVENT_ID], errors=(400, 503)),
    ("get", "/workers"): _op("Live workers", "cluster", _json(_ref("WorkerList"), "workers")),
    ("get", "/workers/{name}"): _op(
        "One live worker", "cluster", _json(_ref("Worker"), "the worker"),
        params=[_path_param("name", "worker name")], errors=(404, 503)),
    ("get", "/queues"): _op("Depth per queue and state", "cluster",
                            _json(_ref("Queues"), "queues")),
    ("patch", "/queues/{name}"): _op(
        "Pause, resume or rate-limit a queue", "cluster",
        _json(_ref("QueueSettings"), "the queue's settings"), params=[QUEUE_NAME],
        body={"required": True, "content": {"application/json": {
            "schema": _ref("QueuePatch")}}}, errors=(400, 422, 503)),
    ("post", "/queues/{name}/purge"): _op(
        "Cancel every queued, scheduled or deferred job of a queue", "cluster",
        _json(_ref("Purged"), "how many were cancelled"), params=[QUEUE_NAME]),
    ("get", "/stats"): _op("Broker and API statistics", "cluster", _json(_ref("Stats"), "stats")),
    ("get", "/health"): {**_op("200 when the broker answers", "cluster",
                              _json(_ref("Health"), "the broker answers"), errors=(),
                              extra={"503": _json(_ref("Health"), "the broker does not answer")}),
                         "security": []},
    ("get", "/meta"): _op(
        "The facts a client builds on: job states, event types, limits, version", "cluster",
        _json(_ref("Meta"), "the facts"), errors=()),
    ("get", "/metrics"): _op(
        "Prometheus metrics", "cluster",
        {"description": "text exposition format",
         "content": {"text/plain": {"schema": {"type": "string"}}}}, errors=()),
    ("get", "/"): {"summary": "The dashboard", "tags": ["pages"], "security": [],
                   "responses": {"200": {"description": "HTML",
                                         "content": {"text/html": {"schema": {
                                             "type": "string"}}}}}},
    ("get", "/docs"): {"summary": "This API's documentation page", "tags": ["pages"],
                       "security": [],
                       "responses": {"200": {"description": "HTML"}}},
    ("get", "/openapi.json"): _op("This document", "pages",
                                  _json({"type": "object"}, "OpenAPI 3.1"), errors=()),
}


def openapi_path(starlette_path: str) -> str:
    """`/jobs/{job_id}/artifacts/{name:path}` -> `/jobs/{job_id}/artifacts/{name}`."""
    return re.sub(r"{(\w+):\w+}", r"{\1}", starlette_path)


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    _, defs = models_json_schema([(model, "validation") for model in (*DOCUMENTED, Meta)],
                                 ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), operation in OPERATIONS.items():
        op_id = f"{method}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_') or 'root'}"
        paths.setdefault(path, {})[method] = {"operationId": op_id, **operation}
    return {
        "openapi": "3.1.0",
        "info": {"title": "zjobs", "version": __version__,
                 "description": "REST and Server-Sent Events for the zjobs job broker. With "
                                "ZJOBS_API_TOKEN set, send `Authorization: Bearer <token>` "
                                "(GET also takes `?token=`)."},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


async def openapi_json(request: Request) -> Response:
    return Json(document())


async def docs(request: Request) -> Response:
    return HTMLResponse(DOCS_HTML)


DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>zjobs API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:960px;padding:0 1rem;
color:#1b1f24}
h1{font-size:1.5rem}h2{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #ddd}
.op{border:1px solid #ddd;border-radius:6px;margin:.5rem 0;padding:.5rem .75rem}
.m{display:inline-block;min-width:4.5em;font-weight:700;text-transform:uppercase}
.get{color:#0a6}.post{color:#06c}code{background:#f3f3f3;padding:0 .25em;border-radius:3px}
.p{color:#555;margin:.25rem 0 0 4.5em}.err{color:#b00}
</style></head><body>
<h1>zjobs API</h1>
<p>Operations of <a id="spec" href="openapi.json">/openapi.json</a> (OpenAPI 3.1).
This page is self-contained: no Swagger UI, which would need a CDN.</p>
<div id="ops">loading…</div>
<script>
(function () {
  var token = new URLSearchParams(location.search).get('token');
  var url = 'openapi.json' + (token ? '?token=' + encodeURIComponent(token) : '');
  document.getElementById('spec').href = url;
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    return e;
  }
  function refName(s) {
    return s && s.$ref ? s.$ref.split('/').pop() : (s && s.oneOf ?
      s.oneOf.map(refName).join(' | ') : (s && s.type) || '');
  }
  fetch(url).then(function (r) {
    if (!r.ok) throw new Error('HTTP ' + r.status + ' (add ?token= if the API has one)');
    return r.json();
  }).then(function (doc) {
    var root = document.getElementById('ops');
    root.textContent = '';
    var byTag = {};
    Object.keys(doc.paths).forEach(function (path) {
      Object.keys(doc.paths[path]).forEach(function (method) {
        var op = doc.paths[path][method];
        var tag = (op.tags || ['other'])[0];
        (byTag[tag] = byTag[tag] || []).push([method, path, op]);
      });
    });
    Object.keys(byTag).forEach(function (tag) {
      root.appendChild(el('h2', null, tag));
      byTag[tag].forEach(function (item) {
        var op = item[2], box = el('div', 'op');
        box.appendChild(el('span', 'm ' + item[0], item[0]));
        box.appendChild(el('code', null, item[1]));
        box.appendChild(document.createTextNode(' ' + (op.summary || '')));
        (op.parameters || []).forEach(function (p) {
          box.appendChild(el('div', 'p', p.in + ' ' + p.name + ': ' +
            (p.schema && (p.schema.type || refName(p.schema)) || '') +
            (p.description ? ' (' + p.description + ')' : '')));
        });
        if (op.requestBody) {
          Object.keys(op.requestBody.content).forEach(function (ct) {
            box.appendChild(el('div', 'p', 'body ' + ct + ': ' +
              refName(op.requestBody.content[ct].schema)));
          });
        }
        Object.keys(op.responses).forEach(function (code) {
          var r = op.responses[code], c = r.content || {}, ct = Object.keys(c)[0];
          box.appendChild(el('div', 'p', code + ' ' + r.description +
            (ct ? ' (' + ct + (c[ct].schema ? ': ' + refName(c[ct].schema) : '') + ')' : '')));
        });
        root.appendChild(box);
      });
    });
  }).catch(function (e) {
    var root = document.getElementById('ops');
    root.textContent = '';
    root.appendChild(el('p', 'err', String(e.message || e)));
  });
})();
</script>
</body></html>
"""
