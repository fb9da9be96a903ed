"""The job's fields, defined once: `FIELDS`.

Each `JobField` says what a field is (name, type, default, bounds, help),
who sets it (the submitter, or the broker as bookkeeping), whether it is a
submit option, and how it is kept (its store column and SQL type, whether
the store updates it after insert, whether clients see it). Everything else
derives from this table, once, at import:

- `broker.jobs.Job`: its slots (the stored fields) and `to_wire` (the shown ones);
- `broker.store`: the column lists and the insert/update/select row converters;
- `broker.submit.build_job`: the checks of every way in (`JobField.check`);
- `broker.models.JobSpec` and `api.schemas` (`Job`, `ExecForm`): the pydantic
  models at the edges, with the same bounds (`JobField.constraints`);
- `zjobs submit`'s job options and their help (`broker.cli`);
- the REST times (`TIMES`) that `api.render` shows as ISO-8601 strings.

This module is plain data: no pydantic, so the broker loop pays nothing for it.
Adding a field is one entry here plus, if it is stored, a migration appended
in `broker.migrations` that adds its column (docs/architecture.md).
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from annotated_types import Len

from zjobs.broker.wire import limits as lim
from zjobs.broker.wire.protocol import pack
from zjobs.broker.wire.text import check_text, text_problem
from zjobs.broker.wire.times import parse_time


class JobState(enum.StrEnum):
    DEFERRED = "deferred"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


STATES = tuple(s.value for s in JobState)


def plain_members(members: type[enum.StrEnum]) -> Any:
    """A string enum's members as plain class attributes holding their values, plain `str`
    (equal to the members: `plain_members(JobState).QUEUED == JobState.QUEUED`). Under
    Python 3.11 a member looked up on its enum costs ~100 ns (a descriptor), on this class
    ~30: the broker loop looks up ~15 a job. And a plain `str` binds to SQLite without the
    adaptation lookup a `str` subclass goes through (broker/stores/rows.py)."""
    return type(members.__name__, (), {name: str(member.value)
                                       for name, member in members.__members__.items()})


class EventType(enum.StrEnum):
    """Every event the broker publishes: the PUB topic and the body's `type`
    (docs/protocol.md 7.3). A member's name is its value in capitals with `_` for `.`
    (`job.succeeded` is `JOB_SUCCEEDED`), the name the dashboard gives it from GET /meta."""

    JOB_SUBMITTED = "job.submitted"
    JOB_SCHEDULED = "job.scheduled"
    JOB_QUEUED = "job.queued"
    JOB_STARTED = "job.started"
    JOB_PROGRESS = "job.progress"
    JOB_RETRYING = "job.retrying"
    JOB_SUCCEEDED = "job.succeeded"
    JOB_FAILED = "job.failed"
    JOB_CANCELLED = "job.cancelled"
    LOG = "log"
    WORKER_JOINED = "worker.joined"
    WORKER_LOST = "worker.lost"
    WORKER_LEFT = "worker.left"
    QUEUE_UPDATED = "queue.updated"
    SCHEDULE_FIRED = "schedule.fired"
    BROKER_STATS = "broker.stats"


STATE_EVENTS: dict[str, EventType] = {
    JobState.SCHEDULED: EventType.JOB_SCHEDULED,
    JobState.QUEUED: EventType.JOB_QUEUED,
    JobState.SUCCEEDED: EventType.JOB_SUCCEEDED,
    JobState.FAILED: EventType.JOB_FAILED,
    JobState.CANCELLED: EventType.JOB_CANCELLED,
}
"""The event that announces a job entering a state, for the states announced by their own
event: a job enters `running` with job.started, and is `deferred` from its job.submitted."""
KINDS = ("task", "exec", "function")

SUBMITTER, BROKER = "submitter", "broker"


@dataclass(frozen=True, slots=True)
class JobField:
    name: str
    type: Any                      # the value as clients see it: a type annotation
    default: Any                   # what a job gets when nobody sets it (copied if mutable)
    help: str
    set_by: str = BROKER           # SUBMITTER: part of a submitted job, checked by build_job
    option: bool = False           # a submit option: Client.submit keyword, zjobs submit flag,
                                   # multipart form field
    sql: str | None = None         # the SQL type of its column in `jobs`; None: not a column
    column: str | None = None      # the column's name when it is not the field's
    mutable: bool = False          # the store writes it again after the insert
    wire: bool = True              # clients see it (to_wire, REST)
    packed: bool = False           # stored as msgpack bytes, shown unpacked
    in_payload: bool = False       # travels inside the packed `payload` (worker-only data)
    time: bool = False             # epoch seconds; ISO-8601 in REST
    low: float | None = None       # numbers: the lowest value allowed ...
    high: float | None = None      # ... and the highest
    low_open: bool = False         # the lowest value itself is refused (a timeout above 0)
    max_len: int | None = None     # names, ids, keys: 1 to max_len characters, no NUL
                                   # (broker.text's rule)
    parse: Callable[[Any], Any] | None = None  # a parser that does the whole check (run_at)
    # derived from the above once, in __post_init__: `check` runs for every submitted job
    base: Any = field(init=False, repr=False, compare=False)     # str for a Literal, list...
    choices: tuple[str, ...] | None = field(init=False, repr=False, compare=False)
    nullable: bool = field(init=False, repr=False, compare=False)
    _accepts: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        inner = _not_none(self.type)
        literal = typing.get_origin(inner) is Literal
        base = str if literal else typing.get_origin(inner) or inner
        derived = {"base": base, "choices": typing.get_args(inner) if literal else None,
                   "nullable": self.type is Any or type(None) in typing.get_args(self.type),
                   "_accepts": _ACCEPTS.get(base, base)}
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @property
    def stored_as(self) -> str:
        """Its column in the store's `jobs` table."""
        return self.column or self.name

    def fresh_default(self) -> Any:
        """The default, a new one each time when it is a list or a dict."""
        return type(self.default)(self.default) if isinstance(self.default, list | dict) \
            else self.default

    def check(self, value: Any) -> Any:
        """`value` as the broker keeps it (None: the default); TypeError/ValueError naming it."""
        if value is None:
            return self.fresh_default()
        if self.parse is not None:
            return self.parse(value)
        if not isinstance(value, self._accepts) or value.__class__ is bool:
            raise TypeError(f"{self.name} must be {_NOUNS.get(self.base, 'a value')}")
        if self.base is str or self.low is not None:
            return self._in_bounds(value)
        return value

    def _in_bounds(self, value: Any) -> Any:
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {list(self.choices)}")
        if self.max_len is not None and not (  # the common case inline: the hot path
                0 < len(value) <= self.max_len and value.isascii() and "\x00" not in value):
            check_text(value, self.name, self.max_len)  # raises, unless valid non-ASCII
        if self.low is None or self.high is None:
            return value
        if self.base is int:
            return lim.int_in(value, self.name, int(self.low), int(self.high))
        value = lim.finite_in(value, self.name, self.low, self.high)
        if self.low_open and value <= self.low:
            raise ValueError(f"{self.name} must be above {self.low:.12g}")
        return value

    def constraints(self) -> dict[str, Any]:
        """The same bounds as keyword arguments of `pydantic.Field`. Numbers are strict, as
        `check` is: `true` is not 1 and `"5"` not 5 (an int is a fine float)."""
        if self.max_len is not None:
            return {"min_length": 1, "max_length": self.max_len}
        strict = {"strict": True} if self.base in (int, float) else {}
        if self.low is None or self.high is None:
            return strict
        return {"gt" if self.low_open else "ge": self.low, "le": self.high, **strict}


def _not_none(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


_ACCEPTS: dict[Any, Any] = {float: (int, float), list: (list, tuple), Any: object}
_NOUNS = {str: "a string", int: "an integer", float: "a number", list: "a list",
          dict: "a map", bytes: "bytes"}

def parse_depends_on(value: Any) -> bytes | None:
    """`depends_on` as the broker keeps it: the ids packed (None for no dependencies)."""
    if not isinstance(value, list | tuple):
        raise TypeError("depends_on must be a list of job ids")
    if len(value) > lim.DEPENDS_ON_MAX:
        raise ValueError(f"depends_on must name at most {lim.DEPENDS_ON_MAX} jobs")
    for job_id in value:
        problem = text_problem(job_id, lim.ID_MAX_LEN)
        if problem is not None:
            raise ValueError(f"depends_on: each job id {problem}")
    return pack(list(dict.fromkeys(value))) if value else None


JobId = Annotated[str, Len(1, lim.ID_MAX_LEN)]  # bounds the edge models see too
Kind = Literal[KINDS]  # type: ignore[valid-type]
Status = Literal[STATES]  # type: ignore[valid-type]

FIELDS: tuple[JobField, ...] = (
    # what the submitter gives
    JobField("id", str, None, "the job's id, time-ordered; the broker assigns a UUIDv7 unless "
             "one is given", SUBMITTER, sql="TEXT", max_len=lim.ID_MAX_LEN),
    JobField("queue", str, "default", "the queue to put the job in", SUBMITTER, option=True,
             sql="TEXT", max_len=lim.QUEUE_MAX_LEN),
    JobField("kind", Kind, "task", "task: a registered callable; exec: a program and its files; "
             "function: a cloudpickled callable", SUBMITTER, sql="TEXT"),
    JobField("task", str | None, None, "the registered task's name (kind task)", SUBMITTER,
             sql="TEXT", max_len=lim.TASK_MAX_LEN),
    JobField("priority", int, 0, "higher runs first; FIFO within a priority", SUBMITTER,
             option=True, sql="INTEGER", low=lim.PRIORITY_MIN, high=lim.PRIORITY_MAX),
    JobField("timeout_s", float | None, None, "seconds one attempt may run; the worker "
             "kills it when they pass [default: --default-timeout, else no limit]", SUBMITTER,
             option=True, sql="REAL", low=0, high=lim.TIMEOUT_MAX_S, low_open=True),
    JobField("max_retries", int, 0, "attempts after the first when it fails", SUBMITTER,
             option=True, sql="INTEGER", low=0, high=lim.MAX_RETRIES_MAX),
    JobField("retry_backoff_s", float, 1.0, "delay before the first retry; doubles each "
             "attempt, with jitter", SUBMITTER, option=True, sql="REAL", low=0,
             high=lim.RETRY_BACKOFF_MAX_S),
    JobField("run_at", float | None, None, "not before this time: epoch seconds or ISO-8601",
             SUBMITTER, option=True, sql="REAL", mutable=True, time=True, parse=parse_time),
    JobField("idempotency_key", str | None, None, "a second submit with the same key returns "
             "the first job", SUBMITTER, option=True, sql="TEXT",
             max_len=lim.IDEMPOTENCY_KEY_MAX_LEN),
    # bookkeeping
    JobField("status", Status, None, "where the job is in its lifecycle", sql="TEXT",
             mutable=True),
    JobField("attempts", int, 0, "attempts started so far", sql="INTEGER", mutable=True),
    JobField("worker", str | None, None, "the worker running it, or that ran it last",
             sql="TEXT", mutable=True),
    JobField("created_at", float, None, "when the broker accepted it", sql="REAL", time=True),
    JobField("started_at", float | None, None, "when its last attempt started", sql="REAL",
             mutable=True, time=True),
    JobField("finished_at", float | None, None, "when it ended", sql="REAL", mutable=True,
             time=True),
    JobField("schedule", str | None, None, "the schedule that submitted it, if one did",
             sql="TEXT"),
    JobField("payload", bytes | None, None, "the packed args, kwargs, spec and function: what "
             "only the worker reads", sql="BLOB", wire=False),
    # what the submitter gives that only the worker reads: inside `payload`
    JobField("args", list[Any], [], "the task's positional arguments", SUBMITTER,
             in_payload=True),
    JobField("kwargs", dict[str, Any], {}, "the task's keyword arguments", SUBMITTER,
             in_payload=True),
    JobField("spec", dict[str, Any] | None, None, "what an exec job runs: entry, args, env, "
             "timeout_s, runtime, net_policy and its files", SUBMITTER, in_payload=True),
    JobField("function", bytes | None, None, "the cloudpickled callable (kind function)",
             SUBMITTER, in_payload=True, wire=False),
    # outcome and bookkeeping
    JobField("result", Any, None, "what the task returned (msgpack-able)", sql="BLOB",
             mutable=True, packed=True),
    JobField("error", dict[str, Any] | None, None, "{type, message, traceback} of a failure",
             sql="BLOB", mutable=True, packed=True),
    JobField("progress", dict[str, Any] | None, None, "the last {fraction, message} the task "
             "reported", sql="BLOB", mutable=True, packed=True),
    # what the submitter gives that the broker keeps packed: shown last
    JobField("depends_on", list[JobId] | None, None, "ids of jobs that must succeed first; "
             "until they have, the job is deferred", SUBMITTER, option=True, sql="BLOB",
             packed=True, parse=parse_depends_on),
    JobField("log_lines", int, 0, "lines logged so far", sql="INTEGER", mutable=True,
             wire=False),
    JobField("order", int, 0, "submission order: FIFO within a priority", sql="INTEGER",
             column="ord", wire=False),
    JobField("lost_count", int, 0, "attempts lost with their worker", sql="INTEGER",
             mutable=True, wire=False),
)

BY_NAME = {f.name: f for f in FIELDS}
STORED = tuple(f for f in FIELDS if f.sql is not None)
MUTABLE = tuple(f for f in STORED if f.mutable)
SUBMITTED = tuple(f for f in FIELDS if f.set_by == SUBMITTER)
CHECKED = tuple(f for f in SUBMITTED if not f.in_payload)  # checked one by one in build_job
SUBMIT_OPTIONS = tuple(f for f in FIELDS if f.option)
TEXT = tuple(f for f in SUBMITTED if f.max_len is not None)  # names, ids, keys: broker.text
WIRE = tuple(f for f in FIELDS if f.wire)
WIRE_COLUMNS = tuple(f.name for f in WIRE if f.sql is not None and not f.packed)
WIRE_PACKED = tuple(f.name for f in WIRE if f.packed)
TIMES = tuple(f.name for f in WIRE if f.time)
