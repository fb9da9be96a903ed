"""Pydantic models of the API's bodies and queries.

Requests are validated with them (jobs with the broker's own `JobSpec`, so
the API and the Python client accept exactly the same jobs); the response
models document the shapes in the OpenAPI schema and are not used to
re-validate what the broker sends back.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from broker import limits as lim
from broker.models import JobSpec

Status = Literal["scheduled", "queued", "running", "succeeded", "failed", "cancelled"]

MAX_LIST = 1000
DEFAULT_LIST = 50
MAX_WAIT_S = 300.0


# ---------------------------------------------------------------- requests


class JobBatchIn(BaseModel):
    """`POST /jobs` with a batch: `{"jobs": [job, ...]}`."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[JobSpec] = Field(min_length=1)


class ExecForm(BaseModel):
    """`POST /jobs` as multipart/form-data: an `exec` job and its files."""

    spec: str = Field(description='the exec spec as JSON, e.g. {"entry": "main.py", '
                                  '"args": [], "env": {}, "timeout_s": 20}')
    code_files: list[bytes] = Field(default_factory=list, description="repeatable; the upload's "
                                    "filename is the file's path in the job directory",
                                    json_schema_extra={"items": {"format": "binary"}})
    input_files: list[bytes] = Field(default_factory=list, description="repeatable, as above",
                                     json_schema_extra={"items": {"format": "binary"}})
    queue: str | None = Field(default=None, max_length=lim.QUEUE_MAX_LEN)
    priority: int | None = Field(default=None, ge=lim.PRIORITY_MIN, le=lim.PRIORITY_MAX)
    max_retries: int | None = Field(default=None, ge=0, le=lim.MAX_RETRIES_MAX)
    retry_backoff_s: float | None = Field(default=None, ge=0, le=lim.RETRY_BACKOFF_MAX_S)
    timeout_s: float | None = Field(default=None, gt=0, le=lim.TIMEOUT_MAX_S,
                                    description="hard limit of one attempt")
    run_at: str | None = Field(default=None, description="epoch seconds or ISO-8601")
    idempotency_key: str | None = Field(default=None, max_length=lim.IDEMPOTENCY_KEY_MAX_LEN)
    id: str | None = Field(default=None, max_length=lim.ID_MAX_LEN)


class ListQuery(BaseModel):
    """`GET /jobs` query: filters, page size and the `next_cursor` of the previous page."""

    model_config = ConfigDict(extra="ignore")

    status: Status | None = None
    queue: str | None = None
    task: str | None = None
    worker: str | None = None
    limit: int = Field(default=DEFAULT_LIST, ge=1, le=MAX_LIST)
    cursor: str | None = None


class ResultQuery(BaseModel):
    """`GET /jobs/{id}/result` query: seconds to wait for the job to end."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    wait: float = Field(default=0.0, ge=0.0, le=MAX_WAIT_S)


class EventsQuery(BaseModel):
    """`GET /events` query: comma-separated type prefixes and a resume point."""

    model_config = ConfigDict(extra="ignore")

    types: str | None = Field(default=None, description="e.g. job.,worker.")
    last_event_id: int | None = Field(default=None, ge=0, le=lim.SEQ_MAX,
                                      description="same as the Last-Event-ID header")


# ---------------------------------------------------------------- responses


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class JobError(BaseModel):
    type: str | None = None
    message: str | None = None
    traceback: str | None = None


class Progress(BaseModel):
    fraction: float | None = None
    message: str | None = None


class Job(BaseModel):
    """A job as REST shows it: times are ISO-8601 UTC strings, bytes are base64."""

    id: str
    queue: str
    kind: Literal["task", "exec", "function"]
    task: str | None = None
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    spec: dict[str, Any] | None = Field(default=None, description="exec spec; files as sizes")
    priority: int = 0
    timeout_s: float | None = None
    max_retries: int = 0
    retry_backoff_s: float = 1.0
    run_at: str | None = None
    idempotency_key: str | None = None
    status: Status
    attempts: int = 0
    worker: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    result: Any = None
    error: JobError | None = None
    progress: Progress | None = None


class JobBatch(BaseModel):
    jobs: list[Job]


class JobPage(BaseModel):
    jobs: list[Job]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; "
                                                "null on the last page")


class JobResult(BaseModel):
    id: str
    status: Status
    result: Any = None
    error: JobError | None = None


class Artifact(BaseModel):
    name: str
    content_type: str
    size: int


class ArtifactList(BaseModel):
    artifacts: list[Artifact]


class Worker(BaseModel):
    name: str
    host: str | None = None
    pid: int | None = None
    queues: list[str]
    capacity: int
    running: list[str]
    tasks: Any = None
    version: str | None = None
    flags: Any = None
    joined_at: str | None = None
    processed: int = 0
    failed: int = 0
    last_seen_s: float = 0.0


class WorkerList(BaseModel):
    workers: list[Worker]


class Queues(BaseModel):
    queues: dict[str, dict[str, int]] = Field(description="queue -> state -> count")


class Stats(BaseModel):
    jobs: dict[str, int]
    queues: dict[str, dict[str, int]]
    workers: int
    counters: dict[str, int]
    throughput_per_s: float
    seq: int
    uptime_s: float
    api: dict[str, Any] = {}


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    broker: dict[str, Any] | None = None
    api: dict[str, Any] | None = None
    error: ErrorDetail | None = None


DOCUMENTED = (JobSpec, JobBatchIn, ExecForm, ErrorBody, Job, JobBatch, JobPage, JobResult,
              ArtifactList, WorkerList, Worker, Queues, Stats, Health)
