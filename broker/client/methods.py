"""The public methods of `Client` and `AsyncClient`: one per plan of `Plans` (plans.py).

Generated from the plans by `python -m zjobs.broker.client.methods_gen`: do not edit, change
the plan and run it again (tests/broker/test_client_methods.py fails while this file differs).
Each method is one call of its plan through the client's driver: `_run` for a call, `_stream`
for a stream.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Iterator, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from zjobs.broker.client.plans import Plan, Plans, R, Stream, T, X


class ClientMethods:
    """The operations of the blocking `Client`: each returns the plan's value."""

    if TYPE_CHECKING:  # what Client provides
        _plans: Plans

        def _run(self, plan: Plan[T]) -> T: ...

        def _stream(self, plan: Stream[T]) -> Iterator[T]: ...

    def submit(self, task: str, *args: Any, queue: str = "default", priority: int = 0,
               timeout_s: float | None = None, max_retries: int = 0, retry_backoff_s: float = 1.0,
               run_at: Any = None, idempotency_key: str | None = None,
               depends_on: list[str] | None = None, **kwargs: Any) -> str:
        """Submit `task(*args, **kwargs)`; the job id. The options are keyword-only.

        `depends_on`: ids of jobs that must succeed first (the job is `deferred` until then).
        """
        return self._run(self._plans.submit(task, *args, queue=queue, priority=priority,
                                            timeout_s=timeout_s, max_retries=max_retries,
                                            retry_backoff_s=retry_backoff_s, run_at=run_at,
                                            idempotency_key=idempotency_key, depends_on=depends_on,
                                            **kwargs))

    def run(self, task: str, *args: Any, timeout: float | None = None, queue: str = "default",
            priority: int = 0, timeout_s: float | None = None, max_retries: int = 0,
            retry_backoff_s: float = 1.0, run_at: Any = None, idempotency_key: str | None = None,
            depends_on: list[str] | None = None, **kwargs: Any) -> Any:
        """Submit `task(*args, **kwargs)` and return its result, as `result(submit(...))`
        does, in one round trip: the SUBMIT itself waits for the job to end (`timeout` as
        for `result`). Raises JobFailed, JobCancelled or TimeoutError.
        """
        return self._run(self._plans.run(task, *args, timeout=timeout, queue=queue,
                                         priority=priority, timeout_s=timeout_s,
                                         max_retries=max_retries, retry_backoff_s=retry_backoff_s,
                                         run_at=run_at, idempotency_key=idempotency_key,
                                         depends_on=depends_on, **kwargs))

    def submit_many(self, jobs: Iterable[dict[str, Any]]) -> list[str]:
        """Submit many jobs (dicts shaped like the REST body); the ids, in order.

        One round trip per batch of 2,000, the batches pipelined.
        """
        return self._run(self._plans.submit_many(jobs))

    def chain(self, jobs: Iterable[dict[str, Any]]) -> list[str]:
        """Submit jobs (dicts as for `submit_many`) each depending on the one before; the ids.

        Each job gets its id here (unless it has one), so the chain is one request.
        """
        return self._run(self._plans.chain(jobs))

    def submit_validated(self, jobs: list[dict[str, Any]]) -> list[str]:
        """Submit jobs already validated (the API's pydantic models) in one request; the ids."""
        return self._run(self._plans.submit_validated(jobs))

    def submit_function(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        """Run `fn(*args, **kwargs)` on a worker started with --allow-pickle; `result` unpickles."""
        return self._run(self._plans.submit_function(fn, *args, **kwargs))

    def submit_exec(self, entry: str, code_files: dict[str, bytes], *,
                    input_files: dict[str, bytes] | None = None, args: list[str] | None = None,
                    env: dict[str, str] | None = None, timeout_s: float | None = None,
                    runtime: str | None = None, net_policy: str = "inherit", **options: Any) -> str:
        """Run a program and its files on a worker started with --allow-exec; the job id."""
        return self._run(self._plans.submit_exec(entry, code_files, input_files=input_files,
                                                 args=args, env=env, timeout_s=timeout_s,
                                                 runtime=runtime, net_policy=net_policy, **options))

    def map(self, fn: Callable[[X], R], iterable: Iterable[X], *, queue: str = "default",
            chunksize: int = 1, timeout: float | None = None) -> list[R]:
        """`[fn(x) for x in iterable]` on the cluster, in input order.

        An exception in one item raises FunctionError with its index and the remote traceback.
        """
        return self._run(self._plans.map(fn, iterable, queue=queue, chunksize=chunksize,
                                         timeout=timeout))

    def get(self, job_id: str) -> dict[str, Any]:
        """The job as a dict."""
        return self._run(self._plans.get(job_id))

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel the job (a running one is stopped); the job."""
        return self._run(self._plans.cancel(job_id))

    def retry(self, job_id: str) -> dict[str, Any]:
        """Run an ended job again, same id; the job."""
        return self._run(self._plans.retry(job_id))

    def retry_all(self, status: str | Sequence[str] = "failed", queue: str | None = None) -> int:
        """Run again every job that ended `status` (failed, cancelled or both), of `queue` or
        of all queues, a page per request; how many were re-run.
        """
        return self._run(self._plans.retry_all(status, queue))

    def list_page(self, **query: Any) -> dict[str, Any]:
        """One page of LIST: `{"jobs": [...], "next_cursor": str | None}`."""
        return self._run(self._plans.list_page(**query))

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Failed jobs whose retries are spent: inspect them, then `retry` the ones to re-run."""
        return self._run(self._plans.dead_letters(queue, limit))

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The job once terminal; TimeoutError if it has not ended within `timeout` seconds."""
        return self._run(self._plans.wait(job_id, timeout))

    def poll(self, job_id: str, timeout: float) -> dict[str, Any]:
        """The job once terminal, or as it is after `timeout` seconds (no exception)."""
        return self._run(self._plans.poll(job_id, timeout))

    def wait_many(self, ids: Iterable[str], timeout: float | None = None) -> list[dict[str, Any]]:
        """Every job of `ids` once all are terminal (or at `timeout`), in order."""
        return self._run(self._plans.wait_many(ids, timeout))

    def result(self, job_id: str, timeout: float | None = None) -> Any:
        """The job's result; raises JobFailed, JobCancelled, or TimeoutError."""
        return self._run(self._plans.result(job_id, timeout))

    def logs(self, job_id: str, since: int = 0) -> list[dict[str, Any]]:
        """Every log line of the job after line `since`, page by page."""
        return self._run(self._plans.logs(job_id, since))

    def logs_page(self, job_id: str, since: int = 0, limit: int = 10000) -> dict[str, Any]:
        """Up to `limit` lines after `since`: `{"lines", "next", "status", "done"}`."""
        return self._run(self._plans.logs_page(job_id, since, limit))

    def artifacts(self, job_id: str) -> list[dict[str, Any]]:
        """The artifacts an `exec` job wrote: name, size and content type of each."""
        return self._run(self._plans.artifacts(job_id))

    def download(self, job_id: str, name: str) -> dict[str, Any]:
        """One artifact: `{"name", "content_type", "data"}` (`data` is bytes)."""
        return self._run(self._plans.download(job_id, name))

    def configure_queue(self, name: str, *, paused: bool | None = None,
                        rate_limit: float | None = None) -> dict[str, Any]:
        """Change what is given: `paused` (a paused queue takes jobs but starts none),
        `rate_limit` (job starts per second over all workers; 0 removes it). The queue's
        settings: `{"name", "paused", "rate_limit"}`.
        """
        return self._run(self._plans.configure_queue(name, paused=paused, rate_limit=rate_limit))

    def purge(self, name: str) -> int:
        """Cancel every job of the queue that waits to start; how many were cancelled."""
        return self._run(self._plans.purge(name))

    def stats(self) -> dict[str, Any]:
        """Queue depths, workers, counters."""
        return self._run(self._plans.stats())

    def stats_with_history(self) -> dict[str, Any]:
        """`stats()` and `history`: the jobs that succeeded and failed in each second of the
        last 10 minutes (for a chart that a reload does not reset).
        """
        return self._run(self._plans.stats_with_history())

    def workers(self, name: str | None = None) -> list[dict[str, Any]]:
        """The live workers, or the one called `name` (BrokerError `not_found` if none)."""
        return self._run(self._plans.workers(name))

    def ping(self, timeout: float | None = None) -> dict[str, Any]:
        """The broker's events endpoint, version and last event seq."""
        return self._run(self._plans.ping(timeout))

    def schedule(self, name: str, task: str, *args: Any, cron: str | None = None,
                 every_s: float | None = None, queue: str = "default", priority: int = 0,
                 timeout_s: float | None = None, max_retries: int = 0,
                 **kwargs: Any) -> dict[str, Any]:
        """Create or replace the schedule `name`: submit `task(*args, **kwargs)` on the
        5-field UTC `cron` expression or every `every_s` seconds; the schedule.
        """
        return self._run(self._plans.schedule(name, task, *args, cron=cron, every_s=every_s,
                                              queue=queue, priority=priority, timeout_s=timeout_s,
                                              max_retries=max_retries, **kwargs))

    def schedule_put(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create or replace the schedule `name` from a REST-shaped body; the schedule."""
        return self._run(self._plans.schedule_put(name, body))

    def schedules(self) -> list[dict[str, Any]]:
        """Every schedule, by name."""
        return self._run(self._plans.schedules())

    def get_schedule(self, name: str) -> dict[str, Any]:
        """One schedule (BrokerError `not_found` if there is none)."""
        return self._run(self._plans.get_schedule(name))

    def unschedule(self, name: str) -> None:
        """Remove the schedule `name` (BrokerError `not_found` if there is none)."""
        return self._run(self._plans.unschedule(name))

    def replay(self, since: int, types: tuple[str, ...] | None = None,
               limit: int = 10000) -> dict[str, Any]:
        """One page of the broker's event window after `since`.

        `{"events", "last", "more", "truncated"}`: `last` is the seq to ask from next.
        """
        return self._run(self._plans.replay(since, types, limit))

    def replay_pages(self, since: int,
                     types: tuple[str, ...] | None = None) -> Generator[dict[str, Any], None, None]:
        """Every page of `replay` from `since` until the broker holds no more."""
        yield from self._stream(self._plans.replay_pages(since, types))

    def events(self, types: tuple[str, ...] = ("job.", "log", "worker."),
               since: int | None = None) -> Generator[dict[str, Any], None, None]:
        """Events replayed from `since` (None: from now), then live; no gap, no duplicate."""
        yield from self._stream(self._plans.events(types, since))

    def list(self, status: str | Sequence[str] | None = None, queue: str | None = None,
             limit: int = 100, **filters: Any) -> list[dict[str, Any]]:
        """Jobs, newest first; `status` may be a list (any of them)."""
        return self._run(self._plans.list(status, queue, limit, **filters))


class AsyncClientMethods:
    """The operations of `AsyncClient`: coroutines, and async iterators for streams."""

    if TYPE_CHECKING:  # what AsyncClient provides
        _plans: Plans

        async def _run(self, plan: Plan[T]) -> T: ...

        def _stream(self, plan: Stream[T]) -> AsyncGenerator[T, None]: ...

    async def submit(self, task: str, *args: Any, queue: str = "default", priority: int = 0,
                     timeout_s: float | None = None, max_retries: int = 0,
                     retry_backoff_s: float = 1.0, run_at: Any = None,
                     idempotency_key: str | None = None, depends_on: list[str] | None = None,
                     **kwargs: Any) -> str:
        """Submit `task(*args, **kwargs)`; the job id. The options are keyword-only.

        `depends_on`: ids of jobs that must succeed first (the job is `deferred` until then).
        """
        return await self._run(self._plans.submit(task, *args, queue=queue, priority=priority,
                                                  timeout_s=timeout_s, max_retries=max_retries,
                                                  retry_backoff_s=retry_backoff_s, run_at=run_at,
                                                  idempotency_key=idempotency_key,
                                                  depends_on=depends_on, **kwargs))

    async def run(self, task: str, *args: Any, timeout: float | None = None, queue: str = "default",
                  priority: int = 0, timeout_s: float | None = None, max_retries: int = 0,
                  retry_backoff_s: float = 1.0, run_at: Any = None,
                  idempotency_key: str | None = None, depends_on: list[str] | None = None,
                  **kwargs: Any) -> Any:
        """Submit `task(*args, **kwargs)` and return its result, as `result(submit(...))`
        does, in one round trip: the SUBMIT itself waits for the job to end (`timeout` as
        for `result`). Raises JobFailed, JobCancelled or TimeoutError.
        """
        return await self._run(self._plans.run(task, *args, timeout=timeout, queue=queue,
                                               priority=priority, timeout_s=timeout_s,
                                               max_retries=max_retries,
                                               retry_backoff_s=retry_backoff_s, run_at=run_at,
                                               idempotency_key=idempotency_key,
                                               depends_on=depends_on, **kwargs))

    async def submit_many(self, jobs: Iterable[dict[str, Any]]) -> list[str]:
        """Submit many jobs (dicts shaped like the REST body); the ids, in order.

        One round trip per batch of 2,000, the batches pipelined.
        """
        return await self._run(self._plans.submit_many(jobs))

    async def chain(self, jobs: Iterable[dict[str, Any]]) -> list[str]:
        """Submit jobs (dicts as for `submit_many`) each depending on the one before; the ids.

        Each job gets its id here (unless it has one), so the chain is one request.
        """
        return await self._run(self._plans.chain(jobs))

    async def submit_validated(self, jobs: list[dict[str, Any]]) -> list[str]:
        """Submit jobs already validated (the API's pydantic models) in one request; the ids."""
        return await self._run(self._plans.submit_validated(jobs))

    async def submit_function(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        """Run `fn(*args, **kwargs)` on a worker started with --allow-pickle; `result` unpickles."""
        return await self._run(self._plans.submit_function(fn, *args, **kwargs))

    async def submit_exec(self, entry: str, code_files: dict[str, bytes], *,
                          input_files: dict[str, bytes] | None = None,
                          args: list[str] | None = None, env: dict[str, str] | None = None,
                          timeout_s: float | None = None, runtime: str | None = None,
                          net_policy: str = "inherit", **options: Any) -> str:
        """Run a program and its files on a worker started with --allow-exec; the job id."""
        return await self._run(self._plans.submit_exec(entry, code_files, input_files=input_files,
                                                       args=args, env=env, timeout_s=timeout_s,
                                                       runtime=runtime, net_policy=net_policy,
                                                       **options))

    async def map(self, fn: Callable[[X], R], iterable: Iterable[X], *, queue: str = "default",
                  chunksize: int = 1, timeout: float | None = None) -> list[R]:
        """`[fn(x) for x in iterable]` on the cluster, in input order.

        An exception in one item raises FunctionError with its index and the remote traceback.
        """
        return await self._run(self._plans.map(fn, iterable, queue=queue, chunksize=chunksize,
                                               timeout=timeout))

    async def get(self, job_id: str) -> dict[str, Any]:
        """The job as a dict."""
        return await self._run(self._plans.get(job_id))

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel the job (a running one is stopped); the job."""
        return await self._run(self._plans.cancel(job_id))

    async def retry(self, job_id: str) -> dict[str, Any]:
        """Run an ended job again, same id; the job."""
        return await self._run(self._plans.retry(job_id))

    async def retry_all(self, status: str | Sequence[str] = "failed",
                        queue: str | None = None) -> int:
        """Run again every job that ended `status` (failed, cancelled or both), of `queue` or
        of all queues, a page per request; how many were re-run.
        """
        return await self._run(self._plans.retry_all(status, queue))

    async def list_page(self, **query: Any) -> dict[str, Any]:
        """One page of LIST: `{"jobs": [...], "next_cursor": str | None}`."""
        return await self._run(self._plans.list_page(**query))

    async def dead_letters(self, queue: str | None = None,
                           limit: int = 100) -> list[dict[str, Any]]:
        """Failed jobs whose retries are spent: inspect them, then `retry` the ones to re-run."""
        return await self._run(self._plans.dead_letters(queue, limit))

    async def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The job once terminal; TimeoutError if it has not ended within `timeout` seconds."""
        return await self._run(self._plans.wait(job_id, timeout))

    async def poll(self, job_id: str, timeout: float) -> dict[str, Any]:
        """The job once terminal, or as it is after `timeout` seconds (no exception)."""
        return await self._run(self._plans.poll(job_id, timeout))

    async def wait_many(self, ids: Iterable[str],
                        timeout: float | None = None) -> list[dict[str, Any]]:
        """Every job of `ids` once all are terminal (or at `timeout`), in order."""
        return await self._run(self._plans.wait_many(ids, timeout))

    async def result(self, job_id: str, timeout: float | None = None) -> Any:
        """The job's result; raises JobFailed, JobCancelled, or TimeoutError."""
        return await self._run(self._plans.result(job_id, timeout))

    async def logs(self, job_id: str, since: int = 0) -> list[dict[str, Any]]:
        """Every log line of the job after line `since`, page by page."""
        return await self._run(self._plans.logs(job_id, since))

    async def logs_page(self, job_id: str, since: int = 0, limit: int = 10000) -> dict[str, Any]:
        """Up to `limit` lines after `since`: `{"lines", "next", "status", "done"}`."""
        return await self._run(self._plans.logs_page(job_id, since, limit))

    async def artifacts(self, job_id: str) -> list[dict[str, Any]]:
        """The artifacts an `exec` job wrote: name, size and content type of each."""
        return await self._run(self._plans.artifacts(job_id))

    async def download(self, job_id: str, name: str) -> dict[str, Any]:
        """One artifact: `{"name", "content_type", "data"}` (`data` is bytes)."""
        return await self._run(self._plans.download(job_id, name))

    async def configure_queue(self, name: str, *, paused: bool | None = None,
                              rate_limit: float | None = None) -> dict[str, Any]:
        """Change what is given: `paused` (a paused queue takes jobs but starts none),
        `rate_limit` (job starts per second over all workers; 0 removes it). The queue's
        settings: `{"name", "paused", "rate_limit"}`.
        """
        return await self._run(self._plans.configure_queue(name, paused=paused,
                                                           rate_limit=rate_limit))

    async def purge(self, name: str) -> int:
        """Cancel every job of the queue that waits to start; how many were cancelled."""
        return await self._run(self._plans.purge(name))

    async def stats(self) -> dict[str, Any]:
        """Queue depths, workers, counters."""
        return await self._run(self._plans.stats())

    async def stats_with_history(self) -> dict[str, Any]:
        """`stats()` and `history`: the jobs that succeeded and failed in each second of the
        last 10 minutes (for a chart that a reload does not reset).
        """
        return await self._run(self._plans.stats_with_history())

    async def workers(self, name: str | None = None) -> list[dict[str, Any]]:
        """The live workers, or the one called `name` (BrokerError `not_found` if none)."""
        return await self._run(self._plans.workers(name))

    async def ping(self, timeout: float | None = None) -> dict[str, Any]:
        """The broker's events endpoint, version and last event seq."""
        return await self._run(self._plans.ping(timeout))

    async def schedule(self, name: str, task: str, *args: Any, cron: str | None = None,
                       every_s: float | None = None, queue: str = "default", priority: int = 0,
                       timeout_s: float | None = None, max_retries: int = 0,
                       **kwargs: Any) -> dict[str, Any]:
        """Create or replace the schedule `name`: submit `task(*args, **kwargs)` on the
        5-field UTC `cron` expression or every `every_s` seconds; the schedule.
        """
        return await self._run(self._plans.schedule(name, task, *args, cron=cron, every_s=every_s,
                                                    queue=queue, priority=priority,
                                                    timeout_s=timeout_s, max_retries=max_retries,
                                                    **kwargs))

    async def schedule_put(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create or replace the schedule `name` from a REST-shaped body; the schedule."""
        return await self._run(self._plans.schedule_put(name, body))

    async def schedules(self) -> list[dict[str, Any]]:
        """Every schedule, by name."""
        return await self._run(self._plans.schedules())

    async def get_schedule(self, name: str) -> dict[str, Any]:
        """One schedule (BrokerError `not_found` if there is none)."""
        return await self._run(self._plans.get_schedule(name))

    async def unschedule(self, name: str) -> None:
        """Remove the schedule `name` (BrokerError `not_found` if there is none)."""
        return await self._run(self._plans.unschedule(name))

    async def replay(self, since: int, types: tuple[str, ...] | None = None,
                     limit: int = 10000) -> dict[str, Any]:
        """One page of the broker's event window after `since`.

        `{"events", "last", "more", "truncated"}`: `last` is the seq to ask from next.
        """
        return await self._run(self._plans.replay(since, types, limit))

    async def replay_pages(self, since: int, types: tuple[str, ...] | None = None,
                           ) -> AsyncGenerator[dict[str, Any], None]:
        """Every page of `replay` from `since` until the broker holds no more."""
        async with aclosing(self._stream(self._plans.replay_pages(since, types))) as items:
            async for item in items:
                yield item

    async def events(self, types: tuple[str, ...] = ("job.", "log", "worker."),
                     since: int | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """Events replayed from `since` (None: from now), then live; no gap, no duplicate."""
        async with aclosing(self._stream(self._plans.events(types, since))) as items:
            async for item in items:
                yield item

    async def list(self, status: str | Sequence[str] | None = None, queue: str | None = None,
                   limit: int = 100, **filters: Any) -> list[dict[str, Any]]:
        """Jobs, newest first; `status` may be a list (any of them)."""
        return await self._run(self._plans.list(status, queue, limit, **filters))
