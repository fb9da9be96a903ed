"""The direct ZeroMQ client: `Client` (blocking) and `AsyncClient` (asyncio).

Both speak ZJP/1 over one DEALER socket with many requests in flight, each
matched to its reply by request id. A broker that does not answer within
`timeout` raises TimeoutError; the client never hangs. A broker that refuses
the client's CURVE key raises AuthError instead, as soon as the handshake
fails. Jobs are validated here, at the edge, so the broker loop only does
cheap checks.

A socket monitor also tells when the connection comes back after it was lost
(a broker restart): the client then sends its pending reads again, a WAIT
with what is left of its timeout, so a `wait` spanning a restart asks the new
broker instead of timing out.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio

from . import protocol as p
from .curve import apply_client_curve
from .errors import AuthError, BrokerError, BrokerUnreachable, JobCancelled, JobFailed
from .functions import chunk_results, function_job, map_jobs, single_result
from .link import WATCHED, Link
from .models import validate_jobs
from .sockets import cancel_and_wait, received

DEFAULT_FRONTEND = "tcp://127.0.0.1:5555"
SUBMIT_CHUNK = 2000
WAIT_SLICE_S = 30.0
ALL_TYPES = ("job.", "log", "worker.")
TERMINAL_STATES = ("succeeded", "failed", "cancelled")
# libzmq reconnects from 100 ms doubling to this cap, each interval with random jitter added.
RECONNECT_IVL_MS = 100
RECONNECT_IVL_MAX_MS = 5000
# Requests that ask and change nothing: sent again to a broker that came back.
RESENDABLE = frozenset({p.WAIT, p.GET, p.LIST, p.LOGS, p.EVENTS, p.STATS, p.PING, p.WORKERS,
                        p.ARTIFACT})
_OPTIONS = ("queue", "priority", "timeout_s", "max_retries", "retry_backoff_s", "run_at",
            "idempotency_key")


def _job_dict(task: str, args: tuple, kwargs: dict[str, Any], options: dict[str, Any]) -> dict:
    job = {"task": task, "args": list(args), "kwargs": kwargs}
    job.update({k: v for k, v in options.items() if v is not None})
    return job


def _terminal(job: dict[str, Any]) -> dict[str, Any]:
    if job["status"] not in TERMINAL_STATES:
        raise TimeoutError(f"job {job['id']} is still {job['status']}")
    return job


def _outcome(job: dict[str, Any]) -> Any:
    """The result of a terminal job, or the matching exception."""
    status = job["status"]
    if status == "succeeded":
        if job.get("kind") == "function":
            return single_result(job)
        return job["result"]
    if status == "failed":
        raise JobFailed(job)
    if status == "cancelled":
        raise JobCancelled(job)
    raise TimeoutError(f"job {job['id']} is still {status}")  # pragma: no cover - see _terminal


def _dealer(ctx: zmq.Context, endpoint: str, curve: Any) -> tuple[zmq.Socket, zmq.Socket]:
    """The DEALER to the frontend and the monitor socket watching its handshakes."""
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.setsockopt(zmq.IMMEDIATE, 1)  # never queue a request for a broker that is not there
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
    sock.sndhwm = sock.rcvhwm = 100_000
    if curve is not None:
        apply_client_curve(sock, curve)
    monitor = sock.get_monitor_socket(WATCHED)  # before connect: no handshake goes unseen
    sock.connect(endpoint)
    return sock, monitor


def _close_dealer(sock: zmq.Socket, monitor: zmq.Socket) -> None:
    if sock.closed:  # closing twice is fine
        return
    sock.disable_monitor()
    monitor.close(linger=0)
    sock.close(linger=0)


@dataclass(slots=True)
class _Pending:
    """A request that may be sent again after a reconnect."""

    command: bytes
    body: Any
    sent_mono: float

    def again(self, rid: bytes, now: float) -> list[bytes]:
        """The request's frames for a broker that came back; a WAIT waits what is left."""
        body = self.body
        if self.command == p.WAIT and isinstance(body.get("timeout"), int | float):
            body = {**body, "timeout": max(body["timeout"] - (now - self.sent_mono), 0.0)}
        return p.encode_request(self.command, rid, body)


def _subscriber(ctx: zmq.Context, endpoint: str, curve: Any) -> zmq.Socket:
    sock = ctx.socket(zmq.SUB)
    sock.linger = 0
    sock.rcvhwm = 1_000_000
    if curve is not None:
        apply_client_curve(sock, curve)
    sock.setsockopt(zmq.SUBSCRIBE, b"")  # all topics: seq must be contiguous to see gaps
    sock.connect(endpoint)
    return sock


def _checked(reply: p.ClientReply) -> Any:
    if not reply.ok:
        body = reply.body if isinstance(reply.body, dict) else {}
        raise BrokerError(str(body.get("code", "error")), str(body.get("message", "")))
    return reply.body


class _EventCursor:
    """Turns replayed and live events into one stream without gaps or duplicates."""

    def __init__(self, since: int, types: tuple[str, ...]) -> None:
        self.last = since
        self.types = types

    def accept(self, event: dict[str, Any]) -> bool:
        """True if `event` is the next one; False if already seen. Raises LookupError on a gap."""
        seq = event["seq"]
        if seq <= self.last:
            return False
        if seq != self.last + 1:
            raise LookupError(seq)
        self.last = seq
        return True

    def replayed(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The wanted events of a replay page not seen yet (a truncated page starts late)."""
        fresh = [e for e in events if e["seq"] > self.last]
        if fresh:
            self.last = fresh[-1]["seq"]
        return [e for e in fresh if self.wanted(e)]

    def wanted(self, event: dict[str, Any]) -> bool:
        return event["type"].startswith(self.types)


class _Base:
    """Request building shared by both clients; subclasses supply `_call`."""

    def __init__(self, endpoint: str, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._events_endpoint: str | None = None

    def _rid(self) -> bytes:
        return next(self._ids).to_bytes(8, "big")

    @staticmethod
    def _submit_body(task: str, args: tuple, kwargs: dict[str, Any],
                     options: dict[str, Any]) -> dict[str, Any]:
        return validate_jobs([_job_dict(task, args, kwargs, options)])[0]

    @staticmethod
    def _chunks(jobs: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        batch: list[dict[str, Any]] = []
        for job in jobs:
            batch.append(job)
            if len(batch) >= SUBMIT_CHUNK:
                yield validate_jobs(batch)
                batch = []
        if batch:
            yield validate_jobs(batch)

    @staticmethod
    def _exec_job(entry: str, code_files: dict[str, bytes], input_files: dict[str, bytes] | None,
                  args: list[str] | None, env: dict[str, str] | None, timeout_s: float | None,
                  runtime: str | None, net_policy: str, options: dict[str, Any]) -> dict:
        spec = {"entry": entry, "args": list(args or []), "env": dict(env or {}),
                "timeout_s": timeout_s, "runtime": runtime, "net_policy": net_policy,
                "code_files": code_files, "input_files": dict(input_files or {})}
        # The runner enforces the spec's timeout itself (and keeps the artifacts written so
        # far); the attempt's timeout is only the backstop, a little later.
        backstop = None if timeout_s is None else timeout_s + 5
        return {"kind": "exec", "spec": spec, "timeout_s": backstop, **options}

    @staticmethod
    def _list_body(status: str | None, queue: str | None, limit: int, **more: Any) -> dict:
        body = {"status": status, "queue": queue, "limit": limit, **more}
        return {k: v for k, v in body.items() if v is not None}


class Client(_Base):
    """Blocking client; not thread-safe (use one per thread)."""

    def __init__(self, endpoint: str = DEFAULT_FRONTEND, *, curve: Any = None,
                 timeout: float = 10.0, events_endpoint: str | None = None) -> None:
        super().__init__(endpoint, timeout)
        self._ctx = zmq.Context.instance()
        self._curve = curve
        self._sock, self._monitor = _dealer(self._ctx, endpoint, curve)
        self._link = Link(endpoint)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        self._outstanding: dict[bytes, _Pending | None] = {}
        self._early: dict[bytes, p.ClientReply] = {}
        self._events_endpoint = events_endpoint

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        _close_dealer(self._sock, self._monitor)

    # ------------------------------------------------------------ transport

    def _send(self, command: bytes, body: Any, deadline: float) -> bytes:
        self._check_link()
        rid = self._rid()
        frames = p.encode_request(command, rid, body)
        while True:
            try:
                self._sock.send_multipart(frames, zmq.NOBLOCK)
                break
            except zmq.Again:
                if time.monotonic() >= deadline:
                    raise BrokerUnreachable(self.endpoint, self.timeout) from None
                self._sock.poll(50, zmq.POLLOUT)
                self._check_link()
        resendable = command in RESENDABLE
        self._outstanding[rid] = _Pending(command, body, time.monotonic()) if resendable else None
        return rid

    def _check_link(self) -> None:
        """Read the monitor: raise AuthError if the broker refused us, resend after a reconnect."""
        while True:
            try:
                frames = self._monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if self._link.note(frames):
                self._resend()
        if self._link.refused is not None:
            raise AuthError(self._link.refused)

    def _resend(self) -> None:
        now = time.monotonic()
        for rid, pending in self._outstanding.items():
            if pending is not None and rid not in self._early:
                try:
                    self._sock.send_multipart(pending.again(rid, now), zmq.NOBLOCK)
                except zmq.Again:
                    return  # lost again already: the next reconnect sends them

    def _recv(self, rid: bytes, deadline: float) -> Any:
        try:
            while rid not in self._early:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._poller.poll(remaining * 1000):
                    if rid not in self._early and time.monotonic() >= deadline:
                        raise BrokerUnreachable(self.endpoint, self.timeout)
                    continue
                self._read_available()
                if rid not in self._early:
                    self._check_link()
            return _checked(self._early.pop(rid))
        finally:
            self._outstanding.pop(rid, None)

    def _read_available(self) -> None:
        while True:
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                reply = p.decode_reply(frames)
            except p.ProtocolError:
                continue
            if reply.request_id in self._outstanding:
                self._early[reply.request_id] = reply

    def _call(self, command: bytes, body: Any, timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        return self._recv(self._send(command, body, deadline), deadline)

    # ------------------------------------------------------------ jobs

    def submit(self, task: str, *args: Any, queue: str = "default", priority: int = 0,
               timeout_s: float | None = None, max_retries: int = 0,
               retry_backoff_s: float = 1.0, run_at: Any = None,
               idempotency_key: str | None = None, **kwargs: Any) -> str:
        options = dict(queue=queue, priority=priority, timeout_s=timeout_s,
                       max_retries=max_retries, retry_backoff_s=retry_backoff_s, run_at=run_at,
                       idempotency_key=idempotency_key)
        return self._call(p.SUBMIT, self._submit_body(task, args, kwargs, options))["id"]

    def submit_many(self, jobs: Iterable[dict[str, Any]]) -> list[str]:
        """Submit many jobs; one round trip per batch of 2,000, batches pipelined."""
        deadline = time.monotonic() + self.timeout
        rids = [self._send(p.SUBMIT, {"jobs": chunk}, deadline) for chunk in self._chunks(jobs)]
        ids: list[str] = []
        for rid in rids:
            ids += self._recv(rid, max(deadline, time.monotonic() + self.timeout))["ids"]
        return ids

    def submit_job(self, job: dict[str, Any]) -> str:
        return self.submit_many([job])[0]

    def submit_function(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        """Run `fn(*args, **kwargs)` on a worker started with --allow-pickle; `result` unpickles."""
        return self.submit_job(function_job(fn, [(args, kwargs)], {}))

    def map(self, fn: Callable[..., Any], iterable: Iterable[Any], *, queue: str = "default",
            chunksize: int = 1, timeout: float | None = None) -> list[Any]:
        """`[fn(x) for x in iterable]` on the cluster, in input order.

        An exception in one item raises FunctionError with its index and the remote traceback.
        """
        jobs, starts = map_jobs(fn, iterable, chunksize, {"queue": queue})
        if not jobs:
            return []
        done = self.wait_many(self.submit_many(jobs), timeout)
        return [value for job, start in zip(done, starts, strict=True)
                for value in chunk_results(job, start)]

    def submit_exec(self, entry: str, code_files: dict[str, bytes], *,
                    input_files: dict[str, bytes] | None = None, args: list[str] | None = None,
                    env: dict[str, str] | None = None, timeout_s: float | None = None,
                    runtime: str | None = None, net_policy: str = "inherit",
                    **options: Any) -> str:
        """Run a program and its files on a worker started with --allow-exec."""
        return self.submit_job(self._exec_job(entry, code_files, input_files, args, env,
                                              timeout_s, runtime, net_policy, options))

    def get(self, job_id: str) -> dict[str, Any]:
        return self._call(p.GET, {"id": job_id})

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call(p.CANCEL, {"id": job_id})

    def retry(self, job_id: str) -> dict[str, Any]:
        return self._call(p.RETRY, {"id": job_id})

    def list(self, status: str | None = None, queue: str | None = None, limit: int = 100,
             **filters: Any) -> list[dict[str, Any]]:
        return self._call(p.LIST, self._list_body(status, queue, limit, **filters))["jobs"]

    def list_page(self, **query: Any) -> dict[str, Any]:
        """One page of LIST: `{"jobs": [...], "next_cursor": str | None}`."""
        return self._call(p.LIST, {k: v for k, v in query.items() if v is not None})

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Failed jobs whose retries are spent: inspect them, then `retry` the ones to re-run."""
        return self.list(status="failed", queue=queue, limit=limit)

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The job once terminal; TimeoutError if it has not ended within `timeout` seconds."""
        return _terminal(self._wait({"id": job_id}, timeout))

    def poll(self, job_id: str, timeout: float) -> dict[str, Any]:
        """The job once terminal, or as it is after `timeout` seconds (no exception)."""
        return self._wait({"id": job_id}, timeout)

    def wait_many(self, ids: list[str], timeout: float | None = None) -> list[dict[str, Any]]:
        """Every job of `ids` once all are terminal (or at `timeout`), in order."""
        return self._wait({"ids": list(ids)}, timeout)["jobs"]

    def _wait(self, body: dict[str, Any], timeout: float | None) -> Any:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            slice_s = WAIT_SLICE_S if end is None else max(min(end - time.monotonic(),
                                                               WAIT_SLICE_S), 0)
            reply = self._call(p.WAIT, {**body, "timeout": slice_s}, slice_s + self.timeout)
            jobs = reply["jobs"] if "jobs" in reply else [reply]
            if all(j["status"] in ("succeeded", "failed", "cancelled") for j in jobs):
                return reply
            if end is not None and time.monotonic() >= end:
                return reply

    def result(self, job_id: str, timeout: float | None = None) -> Any:
        """The job's result; raises JobFailed, JobCancelled, or TimeoutError."""
        return _outcome(self.wait(job_id, timeout))

    def logs(self, job_id: str, since: int = 0) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        while True:
            page = self._call(p.LOGS, {"id": job_id, "since": since})
            lines += page["lines"]
            if not page["lines"]:
                return lines
            since = page["next"]

    def artifacts(self, job_id: str) -> list[dict[str, Any]]:
        return self._call(p.ARTIFACT, {"id": job_id})["artifacts"]

    def download(self, job_id: str, name: str) -> bytes:
        return self._call(p.ARTIFACT, {"id": job_id, "name": name})["data"]

    def stats(self) -> dict[str, Any]:
        return self._call(p.STATS, {})

    def workers(self) -> list[dict[str, Any]]:
        return self._call(p.WORKERS, {})["workers"]

    def ping(self, timeout: float | None = None) -> dict[str, Any]:
        return self._call(p.PING, {}, timeout)

    def replay(self, since: int, types: tuple[str, ...] | None = None,
               limit: int = 10_000) -> dict[str, Any]:
        body: dict[str, Any] = {"since": since, "limit": limit}
        if types:
            body["types"] = list(types)
        return self._call(p.EVENTS, body)

    # ------------------------------------------------------------ events

    def events(self, types: tuple[str, ...] = ALL_TYPES, since: int | None = None,
               idle: Callable[[], None] | None = None) -> Iterator[dict[str, Any]]:
        """Events replayed from `since` (None: from now), then live; no gap, no duplicate."""
        endpoint = self._events_endpoint or self.ping()["events"]
        sub = _subscriber(self._ctx, endpoint, self._curve)
        try:
            start = self.ping()["seq"] if since is None else since
            cursor = _EventCursor(start, tuple(types))
            yield from self._catch_up(cursor)
            while True:
                if not sub.poll(1000):
                    if idle is not None:
                        idle()
                    continue
                event = p.decode_event(sub.recv_multipart())
                try:
                    fresh = cursor.accept(event)
                except LookupError:
                    yield from self._catch_up(cursor)
                    continue
                if fresh and cursor.wanted(event):
                    yield event
        finally:
            sub.close(linger=0)

    def _catch_up(self, cursor: _EventCursor) -> Iterator[dict[str, Any]]:
        while True:
            page = self.replay(cursor.last)
            yield from cursor.replayed(page["events"])
            cursor.last = max(cursor.last, page["last"])
            if not page["more"]:
                return


class AsyncClient(_Base):
    """asyncio client: same methods as `Client`, as coroutines. One reader task per client."""

    def __init__(self, endpoint: str = DEFAULT_FRONTEND, *, curve: Any = None,
                 timeout: float = 10.0, events_endpoint: str | None = None) -> None:
        super().__init__(endpoint, timeout)
        self._ctx = zmq.asyncio.Context.instance()
        self._curve = curve
        self._sock, self._monitor = _dealer(self._ctx, endpoint, curve)
        self._link = Link(endpoint)
        self._pending: dict[bytes, asyncio.Future] = {}
        self._resendable: dict[bytes, _Pending] = {}
        self._reader: asyncio.Task | None = None
        self._watcher: asyncio.Task | None = None
        self._events_endpoint = events_endpoint

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await cancel_and_wait(self._reader)
        await cancel_and_wait(self._watcher)
        self._reader = self._watcher = None
        _close_dealer(self._sock, self._monitor)

    async def _read_replies(self) -> None:
        async for frames in received(self._sock):
            try:
                reply = p.decode_reply(frames)
            except p.ProtocolError:
                continue
            future = self._pending.pop(reply.request_id, None)
            if future is not None and not future.done():
                future.set_result(reply)

    async def _watch_link(self) -> None:
        """Fail pending calls when the broker refuses our key; resend reads after a reconnect."""
        async for frames in received(self._monitor):
            back = self._link.note(frames)
            if self._link.refused is not None:
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(AuthError(self._link.refused))
            elif back:
                self._resend()

    def _resend(self) -> None:
        now = time.monotonic()
        for rid, pending in self._resendable.items():
            try:
                self._sock.send_multipart(pending.again(rid, now), zmq.NOBLOCK)
            except zmq.Again:
                return  # lost again already: the next reconnect sends them

    def _start_tasks(self) -> None:
        loop = asyncio.get_running_loop()
        if self._reader is None:
            self._reader = loop.create_task(self._read_replies())
        if self._watcher is None:
            self._watcher = loop.create_task(self._watch_link())

    async def _call(self, command: bytes, body: Any, timeout: float | None = None) -> Any:
        self._start_tasks()
        limit = self.timeout if timeout is None else timeout
        rid = self._rid()
        future = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            async with asyncio.timeout(limit):
                await self._send(command, rid, body)
                reply = await future
        except TimeoutError:
            raise BrokerUnreachable(self.endpoint, limit) from None
        finally:
            self._pending.pop(rid, None)
            self._resendable.pop(rid, None)
        return _checked(reply)

    async def _send(self, command: bytes, rid: bytes, body: Any) -> None:
        while True:
            if self._link.refused is not None:
                raise AuthError(self._link.refused)
            try:
                await self._sock.send_multipart(p.encode_request(command, rid, body),
                                                zmq.NOBLOCK)
                break
            except zmq.Again:
                await asyncio.sleep(0.05)
        if command in RESENDABLE:
            self._resendable[rid] = _Pending(command, body, time.monotonic())

    async def submit(self, task: str, *args: Any, queue: str = "default", priority: int = 0,
                     timeout_s: float | None = None, max_retries: int = 0,
                     retry_backoff_s: float = 1.0, run_at: Any = None,
                     idempotency_key: str | None = None, **kwargs: Any) -> str:
        options = dict(queue=queue, priority=priority, timeout_s=timeout_s,
                       max_retries=max_retries, retry_backoff_s=retry_backoff_s, run_at=run_at,
                       idempotency_key=idempotency_key)
        return (await self._call(p.SUBMIT, self._submit_body(task, args, kwargs, options)))["id"]

    async def submit_many(self, jobs: Iterable[dict[str, Any]]) -> list[str]:
        replies = await asyncio.gather(
            *(self._call(p.SUBMIT, {"jobs": chunk}) for chunk in self._chunks(jobs)))
        return [job_id for reply in replies for job_id in reply["ids"]]

    async def submit_validated(self, jobs: list[dict[str, Any]]) -> list[str]:
        """Submit jobs already validated (by the API's pydantic models) in one request."""
        return (await self._call(p.SUBMIT, {"jobs": jobs}))["ids"]

    async def submit_function(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        return (await self.submit_many([function_job(fn, [(args, kwargs)], {})]))[0]

    async def map(self, fn: Callable[..., Any], iterable: Iterable[Any], *,
                  queue: str = "default", chunksize: int = 1,
                  timeout: float | None = None) -> list[Any]:
        jobs, starts = map_jobs(fn, iterable, chunksize, {"queue": queue})
        if not jobs:
            return []
        done = await self.wait_many(await self.submit_many(jobs), timeout)
        return [value for job, start in zip(done, starts, strict=True)
                for value in chunk_results(job, start)]

    async def submit_exec(self, entry: str, code_files: dict[str, bytes], *,
                          input_files: dict[str, bytes] | None = None,
                          args: list[str] | None = None, env: dict[str, str] | None = None,
                          timeout_s: float | None = None, runtime: str | None = None,
                          net_policy: str = "inherit", **options: Any) -> str:
        job = self._exec_job(entry, code_files, input_files, args, env, timeout_s, runtime,
                             net_policy, options)
        return (await self.submit_many([job]))[0]

    async def get(self, job_id: str) -> dict[str, Any]:
        return await self._call(p.GET, {"id": job_id})

    async def cancel(self, job_id: str) -> dict[str, Any]:
        return await self._call(p.CANCEL, {"id": job_id})

    async def retry(self, job_id: str) -> dict[str, Any]:
        return await self._call(p.RETRY, {"id": job_id})

    async def list(self, status: str | None = None, queue: str | None = None, limit: int = 100,
                   **filters: Any) -> list[dict[str, Any]]:
        body = self._list_body(status, queue, limit, **filters)
        return (await self._call(p.LIST, body))["jobs"]

    async def list_page(self, **query: Any) -> dict[str, Any]:
        return await self._call(p.LIST, {k: v for k, v in query.items() if v is not None})

    async def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[dict]:
        return await self.list(status="failed", queue=queue, limit=limit)

    async def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        return _terminal(await self._wait({"id": job_id}, timeout))

    async def poll(self, job_id: str, timeout: float) -> dict[str, Any]:
        """The job once terminal, or as it is after `timeout` seconds (no exception)."""
        return await self._wait({"id": job_id}, timeout)

    async def wait_many(self, ids: list[str], timeout: float | None = None) -> list[dict]:
        return (await self._wait({"ids": list(ids)}, timeout))["jobs"]

    async def _wait(self, body: dict[str, Any], timeout: float | None) -> Any:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            slice_s = WAIT_SLICE_S if end is None else max(min(end - time.monotonic(),
                                                               WAIT_SLICE_S), 0)
            reply = await self._call(p.WAIT, {**body, "timeout": slice_s}, slice_s + self.timeout)
            jobs = reply["jobs"] if "jobs" in reply else [reply]
            if all(j["status"] in ("succeeded", "failed", "cancelled") for j in jobs):
                return reply
            if end is not None and time.monotonic() >= end:
                return reply

    async def result(self, job_id: str, timeout: float | None = None) -> Any:
        return _outcome(await self.wait(job_id, timeout))

    async def logs_page(self, job_id: str, since: int = 0, limit: int = 10_000) -> dict:
        return await self._call(p.LOGS, {"id": job_id, "since": since, "limit": limit})

    async def artifacts(self, job_id: str) -> list[dict[str, Any]]:
        return (await self._call(p.ARTIFACT, {"id": job_id}))["artifacts"]

    async def download(self, job_id: str, name: str) -> dict[str, Any]:
        """`{"name", "content_type", "data"}` of one artifact."""
        return await self._call(p.ARTIFACT, {"id": job_id, "name": name})

    async def stats(self) -> dict[str, Any]:
        return await self._call(p.STATS, {})

    async def workers(self, name: str | None = None) -> list[dict[str, Any]]:
        body = {} if name is None else {"name": name}
        return (await self._call(p.WORKERS, body))["workers"]

    async def ping(self, timeout: float | None = None) -> dict[str, Any]:
        return await self._call(p.PING, {}, timeout)

    async def replay(self, since: int, types: tuple[str, ...] | None = None,
                     limit: int = 10_000) -> dict[str, Any]:
        body: dict[str, Any] = {"since": since, "limit": limit}
        if types:
            body["types"] = list(types)
        return await self._call(p.EVENTS, body)

    def subscriber(self, endpoint: str) -> zmq.asyncio.Socket:
        """A SUB socket on the events endpoint, subscribed to everything."""
        return _subscriber(self._ctx, endpoint, self._curve)

    async def events(self, types: tuple[str, ...] = ALL_TYPES,
                     since: int | None = None) -> AsyncIterator[dict[str, Any]]:
        endpoint = self._events_endpoint or (await self.ping())["events"]
        sub = self.subscriber(endpoint)
        try:
            start = (await self.ping())["seq"] if since is None else since
            cursor = _EventCursor(start, tuple(types))
            async for event in self._catch_up(cursor):
                yield event
            while True:
                await sub.poll()
                event = p.decode_event(await sub.recv_multipart(zmq.NOBLOCK))
                try:
                    fresh = cursor.accept(event)
                except LookupError:
                    async for missed in self._catch_up(cursor):
                        yield missed
                    continue
                if fresh and cursor.wanted(event):
                    yield event
        finally:
            sub.close(linger=0)

    async def _catch_up(self, cursor: _EventCursor) -> AsyncIterator[dict[str, Any]]:
        while True:
            page = await self.replay(cursor.last)
            for event in cursor.replayed(page["events"]):
                yield event
            cursor.last = max(cursor.last, page["last"])
            if not page["more"]:
                return
