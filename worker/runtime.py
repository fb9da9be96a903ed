"""The worker process: a DEALER to the broker's backend, Paranoid-Pirate style.

Async tasks run on the worker's event loop (`--async-concurrency` at once), `exec` programs
in subprocesses and `pool="thread"` tasks in its threads (`--concurrency` of those at
once: the READY's cap). Plain `def` tasks and `function` jobs run in the worker's sync
slots (worker/slot.py, started by worker/slots.py): `--concurrency` processes, each a peer
of the broker itself, so a job reaches the process that runs it with no hop through this
one. Everything the worker says to the broker goes through one outbox flushed once per
event-loop cycle, so a burst of results travels as one message.

The worker asks for a prefetch window (worker/window.py): the broker may hand it jobs
beyond its free slots, which wait here in `_buffer`, still `queued`, until a slot frees;
`STARTED` tells the broker a job left the buffer.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import socket
import sys
import time
import types
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog
import zmq

from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.prefetch import PrefetchWindow, worth_telling
from zjobs.broker.wire.settings import default
from zjobs.broker.wire.sockets import endpoint_list, readable, recv_frames
from zjobs.worker.context import JobContext, capture_output, enter, leave
from zjobs.worker.errors import Outcome, error, failure, success
from zjobs.worker.exec_job import run_exec_job, worker_box
from zjobs.worker.peer import (
    Backoff,
    JobBuffer,
    PeerOutbox,
    dealer,
    hand_back,
    ready_body,
    resend_window_s,
    result_body,
    silence_s,
)
from zjobs.worker.registry import DEMO_MODULE, REGISTRY, THREADED, is_async, load_tasks
from zjobs.worker.slot import slot_tasks
from zjobs.worker.slots import SlotSupervisor

log = structlog.get_logger(__name__)

SILENT, STALLED = "silent", "stalled"  # why `_serve` took the connection for lost


@dataclass(slots=True)
class WorkerConfig:
    """The worker's settings; each default is the settings table's (broker/wire/settings.py)."""

    backend: str = default("backend")
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    queues: list[str] = field(default_factory=lambda: default("queues").split(","))
    concurrency: int = field(default_factory=lambda: os.cpu_count() or 1)
    async_concurrency: int = default("async_concurrency")
    prefetch: int = default("prefetch")
    tasks: list[str] = field(default_factory=lambda: [DEMO_MODULE])
    heartbeat_interval_s: float = default("heartbeat_interval")
    heartbeat_liveness: int = default("heartbeat_liveness")
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 5.0  # a worker idles at most this long after the broker is back
    allow_exec: bool = default("allow_exec")
    exec_user: str | None = default("exec_user")
    allow_pickle: bool = default("allow_pickle")
    shutdown_grace_s: float = default("shutdown_grace")
    max_message: int = default("max_message")
    curve: Any = None
    log_json: bool = default("log_json")
    log_level: str = default("log_level")


@dataclass(slots=True)
class _Running:
    attempt: int
    kind: str
    task: asyncio.Task | None = None  # async task, thread task or exec job
    timer: asyncio.TimerHandle | None = None


class Worker:
    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.log = log.bind(worker=config.name)
        self._ctx = zmq.Context()
        self._sock: zmq.Socket | None = None  # plain: the loop waits on it with `readable`
        self._running: dict[str, _Running] = {}
        self._outbox = PeerOutbox(config.max_message, keep_s=resend_window_s(config))
        self._buffer = JobBuffer(self._outbox)
        self._window = PrefetchWindow(config.prefetch, config.async_concurrency, time.monotonic())
        self._announced = 0
        self._flush_scheduled = False
        self._stop = asyncio.Event()
        self._last_recv = self._last_sent = time.monotonic()
        self._backoff = Backoff(config.reconnect_initial_s, config.reconnect_max_s)
        self.registrations = 0
        self._connects = 0  # which endpoint of a primary/standby list is next
        self._threads: ThreadPoolExecutor | None = None  # for pool="thread" tasks, lazily
        self._slots: SlotSupervisor | None = None
        self._starting = False  # inside _start_buffered (a job may end in its first step)
        self._exec_box = worker_box(config) if config.allow_exec else None  # who runs programs

    # ------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        load_tasks(self.config.tasks)
        capture_output()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.stop)
            except (NotImplementedError, RuntimeError):
                pass
        if slot_tasks() or self.config.allow_pickle:
            self._slots = SlotSupervisor(self.config, self.config.concurrency)
            self._slots.start()
        try:
            await self._serve_forever()
            await self._drain()
        finally:
            self._close()

    async def _serve_forever(self) -> None:
        while not self._stop.is_set():
            self._connect()
            lost = await self._serve()
            if lost is not None:
                delay_s = 0.0 if lost == STALLED else self._backoff.next_delay(
                    len(endpoint_list(self.config.backend)))
                self.log.warning("broker.lost", stalled=lost == STALLED,
                                 reconnect_in_s=round(delay_s, 3))
                self._disconnect_socket()  # what came meanwhile goes unread
                await self._sleep(delay_s)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass

    def _connect(self) -> None:
        # One broker at a time, as the Binary Star pattern's clients do: with a standby in the
        # list, a broker that falls silent sends us on to the next endpoint.
        endpoints = endpoint_list(self.config.backend)
        endpoint = endpoints[self._connects % len(endpoints)]
        self._connects += 1
        sock = dealer(self._ctx, endpoint, self.config.max_message, self.config.curve)
        if len(endpoints) > 1:
            self.log.info("broker.connecting", endpoint=endpoint)
        self._sock = sock
        self._last_recv = time.monotonic()
        self._send_ready()

    def _served(self) -> tuple[list[str], list[str]]:
        """The tasks and flags this process runs itself: async and thread tasks, exec."""
        tasks = [n for n, fn in REGISTRY.items() if is_async(fn) or n in THREADED]
        return tasks, ["exec"] if self.config.allow_exec else []

    def _send_ready(self) -> None:
        """Register, naming the jobs still running here so the broker keeps them on us
        (after our reconnect, its restart, or a stall it took for our death). Jobs we
        buffered are the broker's again: it has requeued them."""
        self._buffer.take_all()
        tasks, flags = self._served()
        blocking = [n for n in tasks if n in THREADED]
        self._announced = self._window.size()
        ready = ready_body(
            name=self.config.name, queues=self.config.queues,
            capacity=self.config.async_concurrency, prefetch=self._announced, tasks=tasks,
            flags=flags, heartbeat_interval_s=self.config.heartbeat_interval_s,
            running=[{"job_id": job_id, "attempt": running.attempt}
                     for job_id, running in self._running.items()],
            slots=self.config.concurrency if self._slots is not None else 0,
            caps=[{"max": self.config.concurrency, "tasks": blocking, "flags": flags}])
        self._send_now(p.encode_worker(p.READY, ready))
        self._outbox.resend_recent()  # what we said lately follows: it may not have been read
        self._flush()  # and what ended while we were away, after the READY that names the rest
        self.registrations += 1
        self.log.info("worker.ready", queues=self.config.queues, slots=self.config.concurrency,
                      async_slots=self.config.async_concurrency, running=len(self._running))

    def _disconnect_socket(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    async def _serve(self) -> str | None:
        """Serve the broker until stopped (None) or until the connection is taken for lost:
        the broker fell silent (SILENT), or this process did (STALLED: it was stopped, its
        host froze, a task blocked the loop), so that the broker has taken it for dead and
        requeued what it held, and may have started those jobs elsewhere. Either way none of
        the buffered jobs, nor those sent meanwhile, starts here: the READY that follows
        hands them back (as a sync slot does, worker/slot.py)."""
        interval = self.config.heartbeat_interval_s
        silence = silence_s(self.config)
        assert self._sock is not None
        while not self._stop.is_set():
            ready = await readable(self._sock, interval / 2)
            now = time.monotonic()
            if now - self._last_sent > silence:  # as long as the broker has not heard us
                return STALLED  # before reading what came while we were away
            if ready:
                self._receive_all()
            if now - self._last_recv > silence:
                return SILENT
            self._keep_time(now, silence)
            if now - self._last_sent >= interval:
                self._send_now(p.encode_worker(p.HEARTBEAT))
        return None

    def _keep_time(self, now: float, silence: float) -> None:
        """The window: a buffer no free slot has taken from for a while goes back. The
        slots: one frozen for a liveness window is replaced."""
        busy = len(self._running) >= self.config.async_concurrency
        self._window.check(now, busy=busy)
        if self._window.closed and (self._buffer or self._announced):
            self._hand_back()
        if self._slots is not None:
            self._slots.check(silence)

    def _receive_all(self) -> None:
        """Everything the broker sent, without blocking."""
        sock = self._sock
        assert sock is not None
        while (frames := recv_frames(sock)) is not None:
            self._last_recv = time.monotonic()
            self._backoff.reset()
            try:
                self._on_broker(p.decode_broker(frames))
            except p.ProtocolError as exc:
                self.log.warning("broker.malformed", reason=exc.reason)
        self._start_buffered()

    def _on_broker(self, msg: p.WorkerMessage) -> None:
        if msg.command == p.JOB:
            self._buffer.add(p.decode_jobs(msg.bodies))
        elif msg.command == p.CANCEL_JOB:
            for body in msg.bodies:
                self._cancel(body["job_id"])
        elif msg.command == p.DISCONNECT:
            self.log.info("broker.asked_to_register")
            self._send_ready()

    def _cancel(self, job_id: str) -> None:
        """Drop a buffered job (the broker has taken it back), or stop the running one."""
        if not self._buffer.drop(job_id):
            self._stop_job(job_id, "Cancelled", "cancelled by request")

    def _hand_back(self, *, drain: bool = False) -> None:
        """Give the broker back every buffered job: none of them started here."""
        self._announced = 0
        self._send_now(hand_back(self._buffer.take_all(), drain=drain))

    async def _drain(self) -> None:
        """Stop the slots, hand back the buffer, finish what runs within the grace period,
        then hand back the rest."""
        stopping = asyncio.ensure_future(self._slots.stop(self.config.shutdown_grace_s)) \
            if self._slots is not None else None
        if self._sock is not None:
            self._hand_back(drain=True)
            deadline = time.monotonic() + self.config.shutdown_grace_s
            while self._running and time.monotonic() < deadline:
                if await readable(self._sock, 0.1):
                    self._receive_all()
                self._flush()
            self._flush()
            self._send_now(p.encode_worker(p.DISCONNECT))
        for job_id in list(self._running):
            self._stop_job(job_id, None, "")
        if stopping is not None:
            await stopping

    def _close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)  # a stuck thread must not
            # hold the worker: its attempt was handed back or reported already
        self._disconnect_socket()
        self._ctx.term()
        self.log.info("worker.stopped")

    # ------------------------------------------------------------ running jobs

    def _start_buffered(self) -> None:
        """Start buffered jobs while async slots are free (caps are the broker's to keep);
        then send what they said (at once if none is left running: no batch to wait for)."""
        if self._starting:
            return  # a job that ended within its first step: the loop below goes on
        self._starting = True
        try:
            now = time.monotonic()
            while self._buffer and len(self._running) < self.config.async_concurrency:
                self._window.started(now)
                self._start(self._buffer.next())
        finally:
            self._starting = False
        self._flush_soon()

    def _flush_soon(self) -> None:
        if self._running:
            self._schedule_flush()  # others run: their results may join this message
        else:
            self._flush()  # nothing runs: no batch to wait for, a loop cycle saved

    def _start(self, job: dict[str, Any]) -> None:
        job_id, attempt, kind = job["id"], job["attempt"], job["kind"]
        try:
            payload = p.unpack(job.get("payload") or b"")
        except p.ProtocolError:
            payload = {}
        running = _Running(attempt, kind)
        self._running[job_id] = running
        self._outbox.started(job_id, attempt)
        refusal = self._launch(job_id, attempt, kind, job.get("task"), payload, running)
        if refusal is not None:
            self._finish(job_id, attempt, (False, refusal, None))
            return
        timeout = job.get("timeout_s")  # the broker decides each attempt's limit
        if timeout and job_id in self._running:
            running.timer = asyncio.get_running_loop().call_later(
                timeout, self._stop_job, job_id, "Timeout",
                f"the job exceeded its timeout of {timeout} s")

    def _launch(self, job_id: str, attempt: int, kind: str, task: str | None,
                payload: dict[str, Any], running: _Running) -> dict[str, Any] | None:
        """Start the job where it runs; an error dict if this worker cannot run it."""
        args, kwargs = list(payload.get("args") or []), dict(payload.get("kwargs") or {})
        if kind == "task":
            fn = REGISTRY.get(task or "")
            if fn is None or not (is_async(fn) or task in THREADED):
                return error("UnknownTask", f"unknown task {task!r}: this worker runs "
                             f"{', '.join(self._served()[0]) or 'no tasks'} itself")
            if is_async(fn):
                running.task = _eager_task(self._run_async(job_id, attempt, fn, args, kwargs))
            else:
                running.task = asyncio.ensure_future(
                    self._run_in_thread(job_id, attempt, fn, args, kwargs))
            return None
        if kind == "exec":
            if not self.config.allow_exec:
                return error("NotAllowed", "exec jobs need a worker started with --allow-exec")
            running.task = asyncio.ensure_future(self._run_exec(job_id, attempt, payload))
            return None
        return error("UnknownKind", f"this worker does not run {kind!r} jobs itself")

    async def _run_async(self, job_id: str, attempt: int, fn: Any, args: list,
                         kwargs: dict) -> None:
        ctx = JobContext(job_id, attempt, self._emit)
        token = enter(ctx)
        started = time.monotonic()
        try:
            outcome = success(await fn(*args, **kwargs))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the task's failure is the job's result
            outcome = failure(exc)
        finally:
            self._flush_output(ctx)
            leave(token)
        self._window.finished(time.monotonic() - started)
        self._finish(job_id, attempt, outcome)

    async def _run_in_thread(self, job_id: str, attempt: int, fn: Any, args: list,
                             kwargs: dict) -> None:
        """A `pool="thread"` task: in a worker thread, its logs and progress sent back to
        the loop's thread (the only one that touches the socket and the buffers)."""
        loop = asyncio.get_running_loop()
        ctx = JobContext(job_id, attempt,
                         lambda kind, payload: loop.call_soon_threadsafe(self._emit, kind, payload))

        def call() -> Outcome:
            token = enter(ctx)
            try:
                return success(fn(*args, **kwargs))
            except Exception as exc:  # the task's failure is the job's result
                return failure(exc)
            finally:
                self._flush_output(ctx)
                leave(token)

        if self._threads is None:
            self._threads = ThreadPoolExecutor(self.config.concurrency, "zjobs-task")
        outcome = await loop.run_in_executor(self._threads, contextvars.copy_context().run, call)
        self._finish(job_id, attempt, outcome)

    async def _run_exec(self, job_id: str, attempt: int, payload: dict[str, Any]) -> None:
        ctx = JobContext(job_id, attempt, self._emit)
        outcome, artifacts = await run_exec_job(payload.get("spec") or {}, ctx, self._exec_box)
        self._finish(job_id, attempt, outcome, artifacts)

    @staticmethod
    def _flush_output(ctx: JobContext) -> None:
        for stream in (sys.stdout, sys.stderr):
            flush_job = getattr(stream, "flush_job", None)
            if flush_job is not None:
                flush_job(ctx)

    def _stop_job(self, job_id: str, reason: str | None, message: str) -> None:
        """Stop a running attempt for real (timeout, cancel, shutdown) and report why."""
        running = self._running.get(job_id)
        if running is None:
            return
        if running.task is not None:
            running.task.cancel()
        if reason is None:  # shutdown: the broker requeues it
            self._running.pop(job_id, None)
            return
        self.log.info("job.stopped", job_id=job_id, reason=reason)
        self._finish(job_id, running.attempt, (False, error(reason, message), None))

    def _finish(self, job_id: str, attempt: int | None, outcome: Outcome,
                artifacts: list[dict[str, Any]] | None = None) -> None:
        running = self._running.get(job_id)
        if running is None or (attempt is not None and attempt != running.attempt):
            return
        del self._running[job_id]
        if running.timer is not None:
            running.timer.cancel()
        listed = self._send_artifacts(job_id, running.attempt, artifacts) if artifacts else None
        self._outbox.queue_packed(p.RESULT, result_body(job_id, running.attempt, outcome,
                                                        self.config.max_message, listed))
        self._start_buffered()

    def _send_artifacts(self, job_id: str, attempt: int,
                        artifacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Queue the artifacts as ARTIFACT chunks; returns what the RESULT lists of them."""
        listed = []
        for artifact in artifacts:
            for chunk in p.artifact_chunks(job_id, attempt, artifact, self.config.max_message):
                self._outbox.queue(p.ARTIFACT_CHUNK, chunk)
            listed.append({"name": artifact["name"], "size": len(artifact["data"]),
                           "content_type": artifact.get("content_type")})
        return listed

    def _emit(self, kind: str, payload: tuple) -> None:
        """A log line or progress report from a running job (any runner)."""
        if kind == "log":
            job_id, attempt, stream, line = payload
            if job_id in self._running:
                self._outbox.log_line(job_id, attempt, stream, line)
                self._schedule_flush()
        elif kind == "progress":
            job_id, attempt, fraction, message = payload
            if job_id in self._running:
                self._outbox.queue(p.PROGRESS, {"job_id": job_id, "attempt": attempt,
                                                "fraction": fraction, "message": message})
                self._schedule_flush()

    # ------------------------------------------------------------ outbox

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Send what queued up this loop cycle, and the window when it moved enough."""
        self._flush_scheduled = False
        if self._sock is None:
            return
        for frames in self._outbox.take(self._running):
            self._send_now(frames)
        size = self._window.size()
        if worth_telling(self._announced, size):
            self._announced = size
            self._send_now(p.encode_worker(p.WINDOW, {"prefetch": size}))

    def _send_now(self, frames: list[bytes]) -> None:
        if self._sock is None:
            return
        try:
            self._sock.send_multipart(frames, zmq.NOBLOCK)
            self._last_sent = time.monotonic()
        except zmq.ZMQError as exc:
            self.log.warning("broker.send_failed", command=frames[1].decode(), error=str(exc))


def _eager_task(coro: Any) -> asyncio.Task | None:
    """Run `coro` now until it first waits, then as a task (None if it ended at once).

    A job's first step runs in the loop cycle that received it, instead of the next: an
    async task that never waits (or returns after its first await) saves a cycle of the
    loop on every job. Python 3.12's eager tasks do this; 3.11 has none, so the first step
    runs here in a context of its own, and the task drives the rest in that context.
    """
    context = contextvars.copy_context()
    try:
        yielded = context.run(coro.send, None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_resume(coro, yielded), context=context)


@types.coroutine
def _resume(coro: Any, yielded: Any) -> Generator[Any, Any, Any]:
    """Go on driving `coro` from where its first step left it (`yielded`), as `await` would."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # a cancel, or the awaited future's exception
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            yielded = coro.send(sent)
        except StopIteration as stop:
            return stop.value


def run_worker(config: WorkerConfig) -> None:
    asyncio.run(Worker(config).run())
    import threading

    if any(t.name.startswith("zjobs-task") and t.is_alive() for t in threading.enumerate()):
        # a pool="thread" task that never returns: its attempt is over, and the interpreter
        # would wait for its thread at exit forever
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
