"""Pydantic models of the job at the edges (client and API). The broker loop never uses them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from . import limits as lim
from .jobs import parse_time


class ExecSpec(BaseModel):
    """What an `exec` job runs; files travel beside it as bytes."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    entry: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    timeout_s: float | None = Field(default=None, gt=0, le=lim.TIMEOUT_MAX_S)
    runtime: str | None = None
    net_policy: Literal["inherit", "none"] = "inherit"
    code_files: dict[str, bytes] = Field(default_factory=dict)
    input_files: dict[str, bytes] = Field(default_factory=dict)


class JobSpec(BaseModel):
    """A job as submitted: `{"task": "add", "args": [1, 2]}` and the options of the job model."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: str | None = Field(default=None, min_length=1, max_length=lim.ID_MAX_LEN)
    queue: str = Field(default="default", min_length=1, max_length=lim.QUEUE_MAX_LEN)
    kind: Literal["task", "exec", "function"] = "task"
    task: str | None = Field(default=None, min_length=1, max_length=lim.TASK_MAX_LEN)
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    spec: ExecSpec | None = None
    function: bytes | None = None
    priority: int = Field(default=0, ge=lim.PRIORITY_MIN, le=lim.PRIORITY_MAX)
    timeout_s: float | None = Field(default=None, gt=0, le=lim.TIMEOUT_MAX_S)
    max_retries: int = Field(default=0, ge=0, le=lim.MAX_RETRIES_MAX)
    retry_backoff_s: float = Field(default=1.0, ge=0, le=lim.RETRY_BACKOFF_MAX_S)
    run_at: float | None = None
    idempotency_key: str | None = Field(default=None, min_length=1,
                                        max_length=lim.IDEMPOTENCY_KEY_MAX_LEN)

    @field_validator("args", "kwargs", mode="before")
    @classmethod
    def _data(cls, value: Any, info: ValidationInfo) -> Any:
        """Before pydantic walks it: too deep a structure would exhaust its stack."""
        lim.check_data(value, info.field_name or "data")
        return value

    @field_validator("run_at", mode="before")
    @classmethod
    def _run_at(cls, value: Any) -> float | None:
        if isinstance(value, datetime):
            value = value.timestamp()
        return parse_time(value)

    @model_validator(mode="after")
    def _kind_fields(self) -> JobSpec:
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


JOB_LIST = TypeAdapter(list[JobSpec])


def validate_jobs(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate a batch of job dicts; pydantic.ValidationError names the bad field and index."""
    return [job.to_wire() for job in JOB_LIST.validate_python(jobs)]
