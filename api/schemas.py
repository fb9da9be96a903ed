"""Pydantic models of the API's bodies and queries.

Requests are validated with them (jobs with the broker's own `JobSpec`, so
the API and the Python client accept exactly the same jobs); the response
models document the shapes in the OpenAPI schema and are not used to
re-validate what the broker sends back. The job's models (`JobSpec`, the
multipart `ExecForm` and the REST `Job`) are built from the job schema
(`broker.schema`): their fields, types, bounds and help are its.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    create_model,
)

from zjobs.broker.client.models import JobSpec, pydantic_field
from zjobs.broker.wire import limits as lim
from zjobs.broker.wire.jobs import RETRYABLE
from zjobs.broker.wire.schema import (
    BY_NAME,
    STATES,
    SUBMIT_OPTIONS,
    WIRE,
    JobField,
    JobState,
    Status,
)
from zjobs.broker.wire.text import text_problem

# ---------------------------------------------------------------- field types


def text(max_len: int) -> Any:
    """A name, id or key (a queue, a task, a cursor...): 1 to `max_len` characters, no NUL,
    valid Unicode: the broker's one rule for text (`broker.text`)."""

    def check(value: str) -> str:
        problem = text_problem(value, max_len)
        if problem is not None:
            raise ValueError(problem)  # shown after the field's name
        return value

    return Annotated[str, Field(min_length=1, max_length=max_len), AfterValidator(check)]


def _check_data(value: Any, info: ValidationInfo) -> Any:
    lim.check_data(value, info.field_name or "data")  # before pydantic walks it: depth and
    return value                                        # 64-bit integers


Data = BeforeValidator(_check_data)


# ---------------------------------------------------------------- requests


class JobBatchIn(BaseModel):
    """`POST /jobs` with a batch: `{"jobs": [job, ...]}` (the documented shape; `api.batches`
    validates it one job at a time, so a large batch is never a model in memory whole)."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[JobSpec] = Field(min_length=1)


FORM_FIELDS = (*SUBMIT_OPTIONS, BY_NAME["id"])  # an exec job's options, and its id


def _form_field(field: JobField) -> tuple[Any, Any]:
    """A job option as a form field: absent means the job's default; a time is text."""
    return pydantic_field(field, (str if field.time else field.type) | None, default=None)


ExecForm = create_model(
    "ExecForm", __module__=__name__,
    __doc__="`POST /jobs` as multipart/form-data: an `exec` job and its files.",
    spec=(str, Field(description='the exec spec as JSON, e.g. {"entry": "main.py", '
                                 '"args": [], "env": {}, "timeout_s": 20}')),
    code_files=(list[bytes], Field(default_factory=list, description="repeatable; the upload's "
                                   "filename is the file's path in the job directory",
                                   json_schema_extra={"items": {"format": "binary"}})),
    input_files=(list[bytes], Field(default_factory=list, description="repeatable, as above",
                                    json_schema_extra={"items": {"format": "binary"}})),
    **{f.name: _form_field(f) for f in FORM_FIELDS},
)


class ListQuery(BaseModel):
    """`GET /jobs` query: filters, page size and the `next_cursor` of the previous page.
    `status` may be given several times (`?status=failed&status=cancelled`), or as a
    comma-separated list: a job with any of them matches."""

    model_config = ConfigDict(extra="ignore")

    status: list[Status] | None = None
    queue: text(lim.QUEUE_MAX_LEN) | None = None
    task: text(lim.TASK_MAX_LEN) | None = None
    worker: text(lim.WORKER_NAME_MAX_LEN) | None = None
    depends_on: text(lim.ID_MAX_LEN) | None = Field(
        None, description="only the jobs that depend on this job id (its dependents)")
    limit: int = Field(default=lim.LIST_DEFAULT, ge=1, le=lim.LIST_MAX)
    cursor: text(lim.ID_MAX_LEN) | None = Field(
        None, description="the next_cursor of the previous page; anything else is a 400")


class ResultQuery(BaseModel):
    """`GET /jobs/{id}/result` query: seconds to wait for the job to end."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    wait: float = Field(default=0.0, ge=0.0, le=lim.WAIT_MAX_S)


class EventsQuery(BaseModel):
    """`GET /events` query: comma-separated type prefixes and a resume point."""

    model_config = ConfigDict(extra="ignore")

    types: str | None = Field(default=None, description="e.g. job.,worker.")
    last_event_id: int | None = Field(default=None, ge=0, le=lim.SEQ_MAX,
                                      description="same as the Last-Event-ID header")


class QueuePatch(BaseModel):
    """`PATCH /queues/{name}`: the settings to change; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    paused: StrictBool | None = Field(
        default=None, description="a paused queue accepts jobs but starts none")
    rate_limit: float | None = Field(
        default=None, ge=0.0, strict=True, description="at most this many job starts per "
        "second over all workers; 0 or null removes the limit")


Retryable = Literal[tuple(s for s in STATES if s in RETRYABLE)]  # type: ignore[valid-type]


class RetryAllIn(BaseModel):
    """`POST /jobs/retry`: which ended jobs to run again."""

    model_config = ConfigDict(extra="forbid")

    status: list[Retryable] = Field(  # type: ignore[valid-type]
        default=[JobState.FAILED], min_length=1, description="the states whose jobs are re-run")
    queue: text(lim.QUEUE_MAX_LEN) | None = Field(None, description="only this queue's jobs")


class Retried(BaseModel):
    retried: int = Field(description="how many jobs were queued again")


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


# How REST shows a job field when not as its schema type: times as ISO-8601 strings, the
# error and progress maps with their keys, the exec spec with file sizes for contents.
_REST_TYPES: dict[str, tuple[Any, str | None]] = {
    "error": (JobError | None, None),
    "progress": (Progress | None, None),
    "spec": (dict[str, Any] | None, "exec spec; files as sizes"),
}


def _rest_field(field: JobField) -> tuple[Any, Any]:
    """A shown job field as REST documents it: always present unless its value may be null."""
    annotation, description = _REST_TYPES.get(field.name, (None, field.help))
    if annotation is None:
        annotation = field.type if not field.time else str | None if field.nullable else str
    default = None if field.nullable else ...
    return annotation, Field(default=default, description=description)


Job = create_model(
    "Job", __module__=__name__,
    __doc__="A job as REST shows it: times are ISO-8601 UTC strings, bytes are base64.",
    **{f.name: _rest_field(f) for f in WIRE},
    unserved=(bool, Field(default=False, description="present (true) on a queued job that no "
                          "live worker can run: none serves its queue with its task or flag")),
)


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
    queues: dict[str, dict[str, Any]] = Field(
        description="queue -> state -> count, plus `unserved`, `paused` and `rate_limit`")


class QueueSettings(BaseModel):
    name: str
    paused: bool
    rate_limit: float | None = Field(description="job starts per second; null: no limit")


class Purged(BaseModel):
    cancelled: int = Field(description="the queued and scheduled jobs cancelled")


class Stats(BaseModel):
    jobs: dict[str, int]
    queues: dict[str, dict[str, Any]]
    workers: int
    counters: dict[str, int]
    throughput_per_s: float
    seq: int
    uptime_s: float
    history: dict[str, Any] | None = Field(None, description=(
        "`end` (epoch second), `seconds`, and per-second counts of `succeeded` and `failed` "
        "for the `seconds` whole seconds before `end`, oldest first"))
    api: dict[str, Any] = {}


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    broker: dict[str, Any] | None = None
    api: dict[str, Any] | None = None
    error: ErrorDetail | None = None


class ScheduleIn(BaseModel):
    """`PUT /schedules/{name}`: the job each firing submits, and exactly one of `cron` and
    `every_s`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    task: text(lim.TASK_MAX_LEN) = Field(description="the registered task's name")
    args: Annotated[list[Any], Data] = []
    kwargs: Annotated[dict[str, Any], Data] = {}
    cron: text(lim.CRON_MAX_LEN) | None = Field(
        None, description="a standard 5-field cron expression, in UTC; one that no date "
        "matches (0 0 31 2 *) is refused")
    every_s: float | None = Field(
        None, ge=lim.EVERY_MIN_S, le=lim.EVERY_MAX_S, strict=True,
        description="seconds between firings, from 1 to a year (longer: cron); slots are "
        "multiples of it since the epoch")
    queue: text(lim.QUEUE_MAX_LEN) | None = None
    priority: int | None = Field(None, **BY_NAME["priority"].constraints())
    timeout_s: float | None = Field(None, **BY_NAME["timeout_s"].constraints())
    max_retries: int | None = Field(None, **BY_NAME["max_retries"].constraints())


class Schedule(ScheduleIn):
    model_config = ConfigDict(extra="allow")
    name: str
    next_run_at: str = Field(description="when it fires next (ISO-8601, UTC)")
    last_run_at: str | None = Field(None, description="the slot it fired for last")
    created_at: str


class ScheduleList(BaseModel):
    schedules: list[Schedule]


DOCUMENTED = (JobSpec, JobBatchIn, ExecForm, ErrorBody, Job, JobBatch, JobPage, JobResult,
              ArtifactList, WorkerList, Worker, Queues, QueuePatch, QueueSettings, Purged, Stats,
              RetryAllIn, Retried,
              Health, ScheduleIn, Schedule, ScheduleList)
