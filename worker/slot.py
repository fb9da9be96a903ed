"""A sync slot: a process that runs plain `def` tasks (and `function` jobs), a bus peer itself.

Why a peer of its own: a sync task must be stoppable (a timeout, a cancel) without taking
the worker down, so it runs in a process of its own; but a process behind the worker costs
a hop per job (a pipe write, a wake-up, a pickle, and back), which was most of a no-op's
cost. A slot talks to the broker directly instead, on its own DEALER, registered under the
worker's name as part of its group (`name:index`, `group: name`), with one slot and a
prefetch window (worker/window.py), so no job waits for the next one to come.

Two threads share the socket under one lock:

- the main thread runs the jobs, and between jobs does the I/O itself: it reads what came
  (JOBs into the buffer, CANCELs), sends what its jobs said (batched: a run of no-ops is
  one RESULT message), heartbeats and reconnects while idle;
- the watch thread does that I/O while a job runs (heartbeats through a long task, a
  CANCEL read at once, a STARTED sent for a job that is still running after a tick), and
  keeps time: at the job's timeout, or on its CANCEL, it raises `JobTimeout` or
  `JobCancelled` in the main thread (`PyThreadState_SetAsyncExc`, as Dramatiq's time
  limits do): Python code stops at once. Code that does not come back within
  `HARD_STOP_S` (blocked outside Python: `time.sleep`, a C call; or catching the
  interrupt) is stopped by ending this process: the watch thread reports the job failed
  (`Timeout`) or `cancelled`, hands its buffer back, and exits; the worker starts a new
  slot. (A signal would also wake a sleep; but a task's own code could then see EINTR in
  the middle of a write it does not expect to be cut, and the process is cheap to replace.)

A slot whose watch thread itself cannot run (C code holding the GIL) stops heartbeating:
the worker sees it in the slot's board (`SlotBoard`), kills it, and the slot that replaces
it reports the job it could not finish (`inherited`).
"""

from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import signal
import threading
import time
from typing import Any

import structlog
import zmq

from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.logs import configure_logging
from zjobs.broker.wire.orphans import die_with_parent
from zjobs.broker.wire.prefetch import PrefetchWindow, worth_telling
from zjobs.broker.wire.sockets import endpoint_list, recv_frames, send_frames
from zjobs.worker.context import JobContext, capture_output, enter, leave
from zjobs.worker.errors import Outcome, error, failure, success
from zjobs.worker.functions import run_function
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
from zjobs.worker.registry import REGISTRY, THREADED, import_tasks, is_async

log = structlog.get_logger(__name__)

TICK_S = 0.02          # the watch thread's period while a job runs
HARD_STOP_S = 1.0      # an interrupted job that has not stopped by then ends with its process
FLUSH_EVERY_S = 0.005  # results of a run of short jobs go out at least this often
# A job that ran this long has its result sent before the next job begins: batching saves
# a send (~10 µs) a job, which only a run of much shorter jobs notices; a result held
# through the next job is lost with the process if it is killed (the job runs again).
BATCH_UNDER_S = 0.001
SERVICE_EVERY_S = 0.001  # between buffered jobs, the socket is read at most this often
EXIT_REPLACED = 75     # a slot that ended itself to stop a job: start another at once
_NO_DEADLINE = math.inf
_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc


class JobInterrupted(BaseException):
    """Raised in a running task to stop it; a BaseException, so that a task's own
    `except Exception` does not swallow it. Raised as a class (no arguments): what it
    means is in the slot's `interrupt`."""


class JobTimeout(JobInterrupted):
    """The attempt passed its timeout."""


class JobCancelled(JobInterrupted):
    """The job was cancelled."""


_INTERRUPTS = {"Timeout": JobTimeout, "Cancelled": JobCancelled}


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    """Raise `exc` in thread `thread_id` at its next Python instruction (None: drop one
    that has not landed yet)."""
    _set_async_exc(ctypes.c_ulong(thread_id), None if exc is None else ctypes.py_object(exc))


class SlotBoard:
    """What a slot shows its worker through shared memory, written without a syscall.

    `alive_at`: the watch thread's last tick (monotonic clock, shared by all processes);
    `job_id`/`attempt`/`deadline`: the job it runs and when it must stop; `reason`: why it
    was interrupted (1 Timeout, 2 Cancelled). The worker reads it to find a frozen slot.
    """

    REASONS = {1: "Timeout", 2: "Cancelled"}

    def __init__(self, ctx: Any) -> None:
        self._numbers = ctx.RawArray(ctypes.c_double, 4)  # alive_at, attempt, deadline, reason
        self._job = ctx.RawArray(ctypes.c_char, 256)

    def tick(self, now: float) -> None:
        self._numbers[0] = now

    def running(self, job_id: str, attempt: int, deadline: float) -> None:
        self._job.value = job_id.encode()[:255]
        self._numbers[1] = attempt
        self._numbers[2] = deadline
        self._numbers[3] = 0

    def idle(self) -> None:
        self._job.value = b""

    def interrupted(self, reason: str) -> None:
        self._numbers[3] = next(k for k, v in self.REASONS.items() if v == reason)

    @property
    def alive_at(self) -> float:
        return self._numbers[0]

    def unfinished(self, now: float) -> tuple[str, int, str] | None:
        """The job a frozen slot was running, with why it must end (`Timeout`, `Cancelled`),
        if it was past its deadline or cancelled; None if it may simply run again."""
        job_id = self._job.value.decode(errors="replace")
        reason = self.REASONS.get(int(self._numbers[3]))
        if not job_id or (reason is None and now < self._numbers[2]):
            return None
        return job_id, int(self._numbers[1]), reason or "Timeout"


def slot_tasks() -> list[str]:
    """The tasks a slot runs: every registered plain `def` that is not a thread task."""
    return sorted(n for n, fn in REGISTRY.items() if not is_async(fn) and n not in THREADED)


class Slot:
    """One sync slot of worker `config.name`, number `index`."""

    def __init__(self, config: Any, index: int, board: SlotBoard,
                 inherited: tuple[str, int, str] | None = None) -> None:
        self.config = config
        self.name = f"{config.name}:{index}"
        self.board = board
        self.inherited = inherited
        self.lock = threading.Lock()  # the socket, the buffer, the outbox, the window
        self.ctx = zmq.Context()
        self.sock: zmq.Socket | None = None
        self.current: dict[str, Any] | None = None
        self.in_task = False
        self.interrupt: tuple[str, str, str] | None = None  # (job id, kind, message)
        self.interrupted_at = 0.0
        now = time.monotonic()
        self.outbox = PeerOutbox(config.max_message, keep_s=resend_window_s(config))
        self.buffer = JobBuffer(self.outbox)
        self.window = PrefetchWindow(config.prefetch, 1, now)
        self.announced = 0
        self.backoff = Backoff(config.reconnect_initial_s, config.reconnect_max_s)
        self.endpoints = endpoint_list(config.backend)
        self.connects = 0
        self.reconnect_at = 0.0
        self.last_recv = self.last_sent = self.last_flush = self.last_service = now
        self.last_run_s = 0.0  # how long the last job ran (see BATCH_UNDER_S)
        self.stop_at: float | None = None  # when SIGTERM came
        self.draining = False  # the broker was told: nothing new, the buffer is back
        self.done = threading.Event()
        self.main_thread = threading.get_ident()
        self.tasks = slot_tasks()

    # ------------------------------------------------------------ lifecycle

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        self.board.tick(time.monotonic())  # watched from now: a job may freeze it at once
        with self.lock:
            self._connect()
        watch = threading.Thread(target=self._watch, name="zjobs-slot-watch", daemon=True)
        watch.start()
        try:
            while (job := self._next_job()) is not None:
                self._run(job)
            self._leave()
        finally:
            self.done.set()
            watch.join(1)
            self.ctx.term()

    def _on_term(self, signum: int, frame: Any) -> None:
        if self.stop_at is None:
            self.stop_at = time.monotonic()

    def _leave(self) -> None:
        """Hand back the buffer, send what the jobs said, and say goodbye."""
        with self.lock:
            self._drain()
            self._flush()
            self._send(p.encode_worker(p.DISCONNECT))
            if self.sock is not None:
                self.sock.close(linger=1000)
                self.sock = None

    def _drain(self) -> None:
        """Shutting down: the broker sends nothing new and takes the buffer back."""
        if not self.draining:
            self.draining = True
            self._hand_back(drain=True)

    # ------------------------------------------------------------ the socket (lock held)

    def _connect(self) -> None:
        endpoint = self.endpoints[self.connects % len(self.endpoints)]
        self.connects += 1
        self.sock = dealer(self.ctx, endpoint, self.config.max_message, self.config.curve)
        self.last_recv = time.monotonic()
        self._register()

    def _register(self) -> None:
        """READY, naming the job still running here (and one a replaced slot left), then
        what ended while we were away. The buffer is the broker's again: it has requeued
        those jobs (we were lost, or it restarted)."""
        self.buffer.take_all()
        running = []
        if self.current is not None:
            running.append({"job_id": self.current["id"], "attempt": self.current["attempt"]})
        if self.inherited is not None:
            job_id, attempt, reason = self.inherited
            running.append({"job_id": job_id, "attempt": attempt})
        self.announced = self.window.size()
        ready = ready_body(
            name=self.name, group=self.config.name, queues=self.config.queues, capacity=1,
            prefetch=self.announced, tasks=self.tasks,
            flags=["pickle"] if self.config.allow_pickle else [],
            heartbeat_interval_s=self.config.heartbeat_interval_s, running=running)
        self._send(p.encode_worker(p.READY, ready))
        if self.inherited is not None:
            job_id, attempt, reason = self.inherited
            self.inherited = None
            message = ("cancelled by request" if reason == "Cancelled" else
                       "the job exceeded its timeout")
            self.outbox.queue_packed(p.RESULT, result_body(job_id, attempt, (False, error(
                reason, f"{message}; it did not stop, so its process was replaced"), None),
                self.config.max_message))
        self.outbox.resend_recent()
        self._flush()

    def _send(self, frames: list[bytes]) -> None:
        if self.sock is None:
            return
        try:
            send_frames(self.sock, frames)
            self.last_sent = time.monotonic()
        except zmq.ZMQError as exc:
            log.warning("broker.send_failed", worker=self.name, error=str(exc))

    def _flush(self) -> None:
        """Send what is pending, and a new window when it moved enough."""
        if self.sock is None:
            return
        running = () if self.current is None else (self.current["id"],)
        for frames in self.outbox.take(running):
            self._send(frames)
        size = self.window.size()
        if worth_telling(self.announced, size):
            self.announced = size
            self._send(p.encode_worker(p.WINDOW, {"prefetch": size}))
        self.last_flush = time.monotonic()

    def _service(self, now: float) -> None:
        """Read what came, keep the connection alive, or reconnect when it is time.

        Either side's silence ends the connection: the broker's (it died, or the network
        did), or ours (this process was stopped: SIGSTOP, a frozen VM; the broker has taken
        us for dead). Either way the buffer is the broker's again (it requeued those jobs,
        and may have started them elsewhere): none of it starts here."""
        silence = silence_s(self.config)
        # Silent that long, to the broker's ears: it may have taken us for dead (its clock
        # runs from our last message, not from our last read, which may be later).
        stalled = now - self.last_sent > silence
        self.last_service = now
        if self.sock is None:
            if now >= self.reconnect_at:
                self._connect()
            return
        if not stalled:  # what came while we were away stays unread
            self._receive_all()
        if stalled or now - self.last_recv > silence:
            delay_s = 0.0 if stalled else self.backoff.next_delay(len(self.endpoints))
            log.warning("broker.lost", worker=self.name, stalled=stalled,
                        reconnect_in_s=round(delay_s, 3))
            self.sock.close(linger=0)
            self.sock = None
            self.reconnect_at = now + delay_s
            self.buffer.take_all()
        elif now - self.last_sent >= self.config.heartbeat_interval_s:
            self._send(p.encode_worker(p.HEARTBEAT))

    def _receive_all(self) -> None:
        assert self.sock is not None
        while True:
            frames = recv_frames(self.sock)
            if frames is None:
                return
            self.last_recv = time.monotonic()
            self.backoff.reset()
            try:
                msg = p.decode_broker(frames)
                if msg.command == p.JOB:
                    self.buffer.add(p.decode_jobs(msg.bodies))
                elif msg.command == p.CANCEL_JOB:
                    for body in msg.bodies:
                        self._cancel(body["job_id"])
                elif msg.command == p.DISCONNECT:
                    log.info("broker.asked_to_register", worker=self.name)
                    self._register()
            except p.ProtocolError as exc:
                log.warning("broker.malformed", worker=self.name, reason=exc.reason)

    def _cancel(self, job_id: str) -> None:
        """Drop a buffered job (the broker has taken it back), or stop the running one."""
        if self.buffer.drop(job_id):
            return
        if self.current is not None and self.current["id"] == job_id:
            self._interrupt("Cancelled", "cancelled by request")

    def _hand_back(self, *, drain: bool = False) -> None:
        """Give the broker back every buffered job: it never started here."""
        self.announced = 0
        self._send(hand_back(self.buffer.take_all(), drain=drain))

    # ------------------------------------------------------------ the main thread

    def _next_job(self) -> dict[str, Any] | None:
        """The next buffered job, once it is there; None when the slot should stop."""
        with self.lock:
            while True:
                now = time.monotonic()
                if self.stop_at is not None:
                    return None
                if now - self.last_service >= SERVICE_EVERY_S or not self.buffer:
                    self._service(now)
                if self.buffer:
                    if (now - self.last_flush >= FLUSH_EVERY_S
                            or self.last_run_s >= BATCH_UNDER_S):
                        self._flush()
                    return self._begin(self.buffer.next(), now)
                self._flush()
                if self.sock is None:
                    timeout_s = max(min(self.reconnect_at - now, 0.5), 0.0)
                    time.sleep(timeout_s)
                else:
                    self.sock.poll(self.config.heartbeat_interval_s * 500)

    def _begin(self, job: dict[str, Any], now: float) -> dict[str, Any]:
        self.current = job
        self.interrupt = None
        timeout = job.get("timeout_s")
        job["deadline"] = now + timeout if timeout else _NO_DEADLINE
        self.board.running(job["id"], job["attempt"], job["deadline"])
        self.window.started(now)
        self.outbox.started(job["id"], job["attempt"])
        return job

    def _run(self, job: dict[str, Any]) -> None:
        job_id, attempt = job["id"], job["attempt"]
        ctx = JobContext(job_id, attempt, self._emit)
        token = enter(ctx)
        started = time.monotonic()
        try:
            outcome = self._outcome(job)
        finally:
            out, err = capture_output()
            out.flush_job(ctx)
            err.flush_job(ctx)
            leave(token)
        with self.lock:
            self.current = None
            self.board.idle()
            self.last_run_s = time.monotonic() - started
            self.window.finished(self.last_run_s)
            self.outbox.queue_packed(p.RESULT, result_body(job_id, attempt, outcome,
                                                           self.config.max_message))

    def _outcome(self, job: dict[str, Any]) -> Outcome:
        """Run the job's code: its outcome, whatever happens in it, and wherever an
        interrupt lands (in the task, or a moment after it returned)."""
        try:
            return self._call(job)
        except JobInterrupted:
            self._settle()
            return self._interrupted()

    def _call(self, job: dict[str, Any]) -> Outcome:
        fn, args, kwargs = self._callable(job)
        if fn is None:
            return False, args, None
        self.in_task = True
        try:
            return success(fn(*args, **kwargs))
        except JobInterrupted:
            return self._interrupted()
        except BaseException as exc:  # the task's failure (SystemExit too) is the job's result
            return failure(exc)
        finally:
            self._settle()

    def _interrupted(self) -> Outcome:
        kind, message = (self.interrupt or ("", "Timeout", "the job was stopped"))[1:]
        return False, error(kind, message), None

    def _settle(self) -> None:
        """The task is over: no interrupt may land from now on. The watch thread raises only
        under the lock and while `in_task`, so clearing it under the lock closes the door;
        one raised a moment before is dropped, or caught here if it lands first."""
        while True:
            try:
                with self.lock:
                    self.in_task = False
                    if self.interrupt is not None:  # set before any raise, under this lock
                        _raise_in(self.main_thread, None)
                return
            except JobInterrupted:
                continue

    def _callable(self, job: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
        """(fn, args, kwargs) to call, or (None, error, {}) if this slot cannot run it."""
        payload = p.unpack(job.get("payload") or b"") or {}
        kind, task = job["kind"], job.get("task")
        if kind == "task":
            fn = REGISTRY.get(task or "")
            if fn is None or task not in self.tasks:
                return None, error("UnknownTask", f"unknown task {task!r}: this worker's slots "
                                   f"run {', '.join(self.tasks) or 'no tasks'}"), {}
            return fn, list(payload.get("args") or []), dict(payload.get("kwargs") or {})
        if kind == "function" and self.config.allow_pickle:
            return run_function, [payload.get("function")], {}
        if kind == "function":
            return None, error("NotAllowed", "function jobs need a worker started with "
                               "--allow-pickle"), {}
        return None, error("UnknownKind", f"a sync slot does not run {kind!r} jobs"), {}

    def _emit(self, kind: str, payload: tuple) -> None:
        """A log line or progress report of the running job (from the main thread)."""
        with self.lock:
            if kind == "log":
                job_id, attempt, stream, line = payload
                self.outbox.log_line(job_id, attempt, stream, line)
            else:
                job_id, attempt, fraction, message = payload
                self.outbox.queue(p.PROGRESS, {"job_id": job_id, "attempt": attempt,
                                               "fraction": fraction, "message": message})

    # ------------------------------------------------------------ the watch thread

    def _watch(self) -> None:
        while not self.done.wait(TICK_S):
            now = time.monotonic()
            self.board.tick(now)
            if not self.lock.acquire(blocking=False):
                continue  # the main thread is between jobs: it does the I/O itself
            try:
                if self.current is not None:
                    self._service(now)
                    self._enforce(self.current, now)
                    self._flush()
            finally:
                self.lock.release()

    def _enforce(self, job: dict[str, Any], now: float) -> None:
        """Time, for the job that runs now: a long task returns the buffer, a timeout or a
        cancel interrupts it, an interrupted task that goes on ends its process; so does
        the grace period of a shutdown."""
        self.window.check(now, busy=True)
        if self.stop_at is not None:
            self._drain()
        elif self.window.closed and (self.buffer or self.announced):
            self._hand_back()
        if self.interrupt is None and now >= job["deadline"]:
            self._interrupt("Timeout", f"the job exceeded its timeout of {job['timeout_s']} s")
        elif self.interrupt is not None and now - self.interrupted_at >= HARD_STOP_S:
            self._replace(job, *self.interrupt[1:])
        elif self.stop_at is not None and now - self.stop_at >= self.config.shutdown_grace_s:
            log.info("job.handed_back", worker=self.name, job_id=job["id"])
            self._send(p.encode_worker(p.DISCONNECT))  # the broker requeues the job
            self._exit()

    def _interrupt(self, kind: str, message: str) -> None:
        """Stop the running job (lock held): an exception raised in its code, now."""
        assert self.current is not None
        if self.interrupt is not None:
            return  # one per job: the hard stop follows if it does not land
        self.interrupt = (self.current["id"], kind, message)
        self.interrupted_at = time.monotonic()
        self.board.interrupted(kind)
        log.info("job.stopping", worker=self.name, job_id=self.current["id"], reason=kind)
        if self.in_task:
            _raise_in(self.main_thread, _INTERRUPTS[kind])

    def _replace(self, job: dict[str, Any], kind: str, message: str) -> None:
        """The task did not stop: report it, hand back the buffer, and end this process."""
        log.warning("job.stuck", worker=self.name, job_id=job["id"], reason=kind)
        self.outbox.queue_packed(p.RESULT, result_body(job["id"], job["attempt"], (False, error(
            kind, f"{message}; it did not stop, so its process was replaced"), None),
            self.config.max_message))
        self.current = None
        self._hand_back()
        self._flush()
        self._exit()

    def _exit(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=1000)  # what was just said still goes out
            self.sock = None
        self.ctx.term()
        os._exit(EXIT_REPLACED)


def slot_main(config: Any, index: int, board: SlotBoard,
              inherited: tuple[str, int, str] | None) -> None:
    """A slot process: its tasks imported, its output captured, serving until SIGTERM."""
    parent = multiprocessing.parent_process()
    die_with_parent(signal.SIGKILL, parent.pid if parent is not None else None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker owns shutdown
    configure_logging(config.log_json, config.log_level)
    import_tasks(config.tasks)
    capture_output()
    Slot(config, index, board, inherited).run()
