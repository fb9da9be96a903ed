"""What a running task can ask for: its job context, progress reports, log lines, retries."""

from __future__ import annotations

import contextvars
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class Retry(Exception):
    """Raise from a task to ask for another attempt after `delay_s` (counts against max_retries)."""

    def __init__(self, delay_s: float | None = None, message: str = "retry requested") -> None:
        super().__init__(message)
        self.delay_s = delay_s


@dataclass(slots=True)
class JobContext:
    job_id: str
    attempt: int
    _emit: Callable[[str, tuple], object]

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress, `fraction` from 0 to 1; published as `job.progress`."""
        self._emit("progress", (self.job_id, self.attempt, float(fraction), message))

    def log(self, line: str, stream: str = "stdout") -> None:
        self._emit("log", (self.job_id, self.attempt, stream, str(line)))


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar("zjobs_job",
                                                                             default=None)


def current_job() -> JobContext:
    """The context of the job this code runs in; RuntimeError outside a job."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("not inside a zjobs job")
    return ctx


def progress(fraction: float, message: str | None = None) -> None:
    current_job().progress(fraction, message)


def log(line: str, stream: str = "stdout") -> None:
    current_job().log(line, stream)


def enter(ctx: JobContext) -> contextvars.Token:
    return _current.set(ctx)


def leave(token: contextvars.Token) -> None:
    _current.reset(token)


class JobOutput(io.TextIOBase):
    """sys.stdout/sys.stderr stand-in: whole lines go to the current job's log.

    Outside a job, text goes to the real stream. Works for async tasks too,
    because the current job is a context variable, one per asyncio task.
    """

    def __init__(self, stream: str, fallback: Any) -> None:
        self._stream = stream
        self._fallback = fallback
        self._partial: dict[str, str] = {}

    def write(self, text: str) -> int:
        ctx = _current.get()
        if ctx is None:
            return self._fallback.write(text)
        buffered = self._partial.pop(ctx.job_id, "") + text
        *lines, rest = buffered.split("\n")
        for line in lines:
            ctx.log(line, self._stream)
        if rest:
            self._partial[ctx.job_id] = rest
        return len(text)

    def flush_job(self, ctx: JobContext) -> None:
        rest = self._partial.pop(ctx.job_id, "")
        if rest:
            ctx.log(rest, self._stream)

    def flush(self) -> None:
        self._fallback.flush()

    def writable(self) -> bool:
        return True


def capture_output() -> tuple[JobOutput, JobOutput]:
    """Route print() and logging to the current job's log (idempotent)."""
    if not isinstance(sys.stdout, JobOutput):
        sys.stdout = JobOutput("stdout", sys.stdout)
    if not isinstance(sys.stderr, JobOutput):
        sys.stderr = JobOutput("stderr", sys.stderr)
    return sys.stdout, sys.stderr
