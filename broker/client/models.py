"""Pydantic models of the job at the edges (client and API). The broker loop never uses them.

`JobSpec`'s fields, types, defaults, bounds and descriptions come from the job
schema (`broker.schema`), the table `build_job` checks with too, so the two
cannot disagree; what is written here is only what spans fields (a task job
needs `task`) and the exec spec's own model.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from zjobs.broker.wire import limits as lim
from zjobs.broker.wire.errors import InvalidJob
from zjobs.broker.wire.schema import BY_NAME, SUBMITTED, TEXT, JobField
from zjobs.broker.wire.text import text_problem
from zjobs.broker.wire.times import parse_time


class ExecSpec(BaseModel):
    """What an `exec` job runs; files travel beside it as bytes."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    entry: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    timeout_s: float | None = Field(default=None, **BY_NAME["timeout_s"].constraints())
    runtime: str | None = None
    net_policy: Literal["inherit", "none"] = "inherit"
    code_files: dict[str, bytes] = Field(default_factory=dict)
    input_files: dict[str, bytes] = Field(default_factory=dict)


def pydantic_field(field: JobField, annotation: Any = None, **extra: Any) -> tuple[Any, Any]:
    """`(annotation, FieldInfo)` of a job field for `create_model`: its type, default, bounds
    and help from the job schema (`annotation` overrides the type)."""
    if isinstance(field.default, list | dict):
        extra["default_factory"] = type(field.default)
    else:
        extra.setdefault("default", field.default)
    if annotation is None:
        optional = extra.get("default", ...) is None and not field.nullable
        annotation = field.type | None if optional else field.type
    return annotation, Field(description=field.help, **field.constraints(), **extra)


class _JobSpecChecks(BaseModel):
    """What a submitted job must satisfy beyond its fields' types and bounds."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    if TYPE_CHECKING:  # fields of JobSpec (made from the schema below) these checks read
        kind: str
        task: str | None
        spec: ExecSpec | None
        function: bytes | None

    @field_validator("args", "kwargs", mode="before", check_fields=False)
    @classmethod
    def _data(cls, value: Any, info: ValidationInfo) -> Any:
        """Before pydantic walks it: too deep a structure would exhaust its stack."""
        lim.check_data(value, info.field_name or "data")
        return value

    @field_validator(*(f.name for f in TEXT), mode="after", check_fields=False)
    @classmethod
    def _text(cls, value: Any, info: ValidationInfo) -> Any:
        """Names, ids and keys: the broker's one rule for text (no NUL, valid Unicode)."""
        problem = None if value is None else \
            text_problem(value, BY_NAME[str(info.field_name)].max_len or 0)
        if problem is not None:
            raise ValueError(problem)  # shown after the field's name
        return value

    @field_validator("depends_on", mode="after", check_fields=False)
    @classmethod
    def _job_ids(cls, value: Any) -> Any:
        for job_id in value or ():
            problem = text_problem(job_id, lim.ID_MAX_LEN)
            if problem is not None:
                raise ValueError(f"each job id {problem}")
        return value

    @field_validator("run_at", mode="before", check_fields=False)
    @classmethod
    def _run_at(cls, value: Any) -> float | None:
        if isinstance(value, datetime):
            value = value.timestamp()
        return parse_time(value)

    @model_validator(mode="after")
    def _kind_fields(self) -> Any:
        if self.kind == "task" and not self.task:
            raise ValueError("a task job needs `task`, the registered task name")
        if self.kind == "exec" and self.spec is None:
            raise ValueError("an exec job needs `spec`")
        if self.kind == "function" and self.function is None:
            raise ValueError("a function job needs `function`")
        return self

    def to_wire(self) -> dict[str, Any]:
        """The fields the caller set (the broker applies the same defaults), as plain data."""
        if self.spec is not None:
            data = self.model_dump(exclude_none=True, exclude_defaults=True)
        else:  # the common case, ~5x cheaper than model_dump: no nested model to dump
            data = {k: getattr(self, k) for k in self.model_fields_set}
            data = {k: v for k, v in data.items() if v is not None}
        if self.kind == "task":
            data["task"] = self.task
        return data


_OVERRIDES = {"spec": ExecSpec | None}  # the exec spec is checked in full at the edge

_FIELDS: dict[str, Any] = {f.name: pydantic_field(f, _OVERRIDES.get(f.name)) for f in SUBMITTED}
JobSpec = create_model(
    "JobSpec", __base__=_JobSpecChecks, __module__=__name__,
    __doc__="A job as submitted: `{\"task\": \"add\", \"args\": [1, 2]}` and the options of "
            "the job model.",
    **_FIELDS,
)


JOB_LIST = TypeAdapter(list[JobSpec])


# Fields whose schema check (`JobField.check`, what the broker runs) is the whole check:
# no coercion for pydantic to do. A task job of only these is checked without pydantic.
_PLAIN = frozenset({"kind", "task", "args", "kwargs", "queue", "priority", "timeout_s",
                    "max_retries", "retry_backoff_s", "idempotency_key", "id", "depends_on"})
_PLAIN_CHECKS = {name: BY_NAME[name].check for name in _PLAIN}


def _plain(job: Any) -> dict[str, Any] | None:
    """The wire form of a plain task job, checked field by field with the job schema as the
    broker checks it (~1 µs against ~15 µs for pydantic); None for anything else, or for
    anything wrong, so that pydantic validates it and its error names the field."""
    if not isinstance(job, dict) or not job.keys() <= _PLAIN or job.get("kind", "task") != "task":
        return None
    wire: dict[str, Any] = {}
    try:
        for name, value in job.items():
            if value is not None:
                _PLAIN_CHECKS[name](value)
                wire[name] = value
        lim.check_data(wire.get("args"), "args")
        lim.check_data(wire.get("kwargs"), "kwargs")
    except (TypeError, ValueError, OverflowError):
        return None
    if not wire.get("task"):
        return None
    if isinstance(wire.get("args"), tuple):
        wire["args"] = list(wire["args"])
    return wire


def validate_jobs(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate a batch of job dicts; InvalidJob (a ValueError) names the bad field, and the
    job's position in a batch of several.

    Plain task jobs (the common case) take the schema's own checks; the rest pydantic."""
    plain = [_plain(job) for job in jobs]
    if None not in plain:
        return plain  # type: ignore[return-value]
    try:
        return [job.to_wire() for job in JOB_LIST.validate_python(jobs)]
    except ValidationError as exc:
        raise invalid_job(exc, batch=len(jobs) > 1) from None


MAX_REPORTED = 3


def invalid_job(exc: ValidationError, batch: bool) -> InvalidJob:
    """pydantic's errors as one line: `invalid job: priority: Input should be a valid integer,
    unable to parse string as an integer (got 'high')`."""
    parts, first = [], None
    for error in exc.errors()[:MAX_REPORTED]:
        loc = list(error["loc"])
        where = f"job {loc.pop(0)}: " if batch and loc and isinstance(loc[0], int) else ""
        if not batch and loc and isinstance(loc[0], int):
            loc.pop(0)
        field = ".".join(str(part) for part in loc)
        first = first or field or None
        message = str(error["msg"]).removeprefix("Value error, ")
        given = f" (got {_short(error['input'])})" if error["type"] not in _NO_INPUT else ""
        parts.append(f"{where}{field + ': ' if field else ''}{message}{given}")
    more = exc.error_count() - MAX_REPORTED
    if more > 0:
        parts.append(f"and {more} more")
    return InvalidJob("invalid job: " + "; ".join(parts), first, exc.errors())


_NO_INPUT = frozenset({"missing", "extra_forbidden", "value_error", "assertion_error"})


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"
