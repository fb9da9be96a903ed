"""zjobs worker package: the task registry, the job context and the worker runtime."""

from .context import JobContext, Retry, current_job, log, progress
from .registry import task

__all__ = ["JobContext", "Retry", "current_job", "log", "progress", "task"]
