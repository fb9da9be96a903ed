"""The worker's own process pool for sync tasks.

Not concurrent.futures: a timeout or a cancel must be able to kill the one
process running that job (and only it) and put a fresh one in its place.
Each child runs one job at a time and talks to the parent over a pipe:

    parent -> child: (job_id, attempt, kind, task, args, kwargs, function) | None to stop
    child -> parent: ("log", job_id, attempt, stream, line)
                     ("progress", job_id, attempt, fraction, message)
                     ("done", job_id, attempt, ok, value, retry_in_s)
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import time
from collections import deque
from collections.abc import Callable

from broker.orphans import die_with_parent

from .context import JobContext, capture_output, enter, leave
from .errors import FunctionCallError, Outcome, error, failure, success
from .registry import REGISTRY, load_tasks

Message = tuple
_READ_BYTES = 1 << 16


class _Child:
    __slots__ = ("process", "conn", "job_id", "inbox")

    def __init__(self, process: multiprocessing.process.BaseProcess,
                 conn: multiprocessing.connection.Connection) -> None:
        self.process = process
        self.conn = conn
        self.job_id: str | None = None
        self.inbox = bytearray()  # bytes read from the pipe, not yet a whole message

    def read_messages(self) -> list[Message]:
        """Every whole message the pipe holds now, from one read.

        The frames are `Connection.send`'s (a 4-byte big-endian length, then the pickle);
        reading them here costs one syscall per wake-up where `poll()` and `recv()` cost
        four per message. Raises EOFError when the child has closed its end.
        """
        data = os.read(self.conn.fileno(), _READ_BYTES)
        if not data:
            raise EOFError
        inbox = self.inbox
        inbox += data
        messages, at = [], 0
        while len(inbox) - at >= 4:
            size = int.from_bytes(inbox[at:at + 4], "big")
            if len(inbox) - at - 4 < size:
                break
            messages.append(pickle.loads(inbox[at + 4:at + 4 + size]))
            at += 4 + size
        del inbox[:at]
        return messages


class ProcessPool:
    def __init__(self, size: int, modules: list[str],
                 on_message: Callable[[Message], None]) -> None:
        self.size = max(size, 1)
        self._modules = modules
        self._on_message = on_message
        self._mp = multiprocessing.get_context("spawn")
        self._idle: deque[_Child] = deque()
        self._busy: dict[str, _Child] = {}
        self._backlog: deque[tuple] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    def start(self, prewarm: int | None = None) -> None:
        """Start a few processes now (CPU count at most); the rest come when jobs need them.

        A worker with a large concurrency mostly for async tasks must not fork
        hundreds of interpreters it will never use.
        """
        self._loop = asyncio.get_running_loop()
        for _ in range(min(self.size, prewarm or os.cpu_count() or 1)):
            self._spawn()

    @property
    def _count(self) -> int:
        return len(self._idle) + len(self._busy)

    def pids(self) -> list[int]:
        children = list(self._idle) + list(self._busy.values())
        return [c.process.pid for c in children if c.process.pid is not None]

    def _spawn(self) -> None:
        parent_conn, child_conn = self._mp.Pipe()
        process = self._mp.Process(target=child_main, args=(child_conn, self._modules),
                                   daemon=True, name="zjobs-pool")
        process.start()
        child_conn.close()
        child = _Child(process, parent_conn)
        assert self._loop is not None
        self._loop.add_reader(parent_conn.fileno(), self._on_readable, child)
        self._idle.append(child)

    def submit(self, item: tuple) -> None:
        self._backlog.append(item)
        self._run_backlog()

    def _run_backlog(self) -> None:
        while self._backlog and not self._idle and self._count < self.size and not self._closing:
            self._spawn()
        while self._backlog and self._idle:
            item = self._backlog.popleft()
            child = self._idle.popleft()
            child.job_id = item[0]
            self._busy[item[0]] = child
            child.conn.send(item)

    def _on_readable(self, child: _Child) -> None:
        try:
            for message in child.read_messages():
                if message[0] == "done" and self._busy.get(message[1]) is child:
                    del self._busy[message[1]]
                    child.job_id = None
                    self._idle.append(child)
                self._on_message(message)
        except (EOFError, OSError):
            self._lost(child)
            return
        self._run_backlog()

    def _lost(self, child: _Child) -> None:
        """A child died on its own (a task called os._exit, or was OOM-killed)."""
        self._discard(child)
        if child.job_id is not None:
            self._busy.pop(child.job_id, None)
            self._on_message(("done", child.job_id, None, False,
                              error("PoolProcessDied", "the pool process running the job died "
                                    f"(exit code {child.process.exitcode})"), None))
        self._run_backlog()

    def _discard(self, child: _Child) -> None:
        assert self._loop is not None
        try:
            self._loop.remove_reader(child.conn.fileno())
        except (OSError, ValueError):
            pass
        child.conn.close()
        if child in self._idle:
            self._idle.remove(child)

    def kill(self, job_id: str) -> bool:
        """Stop the process running `job_id` for real; a fresh one takes its place."""
        for index, item in enumerate(self._backlog):
            if item[0] == job_id:
                del self._backlog[index]
                return True
        child = self._busy.pop(job_id, None)
        if child is None:
            return False
        self._discard(child)
        child.process.kill()
        child.process.join(5)
        self._run_backlog()
        return True

    def close(self, timeout_s: float = 3.0) -> None:
        self._closing = True
        children = list(self._idle) + list(self._busy.values())
        for child in children:
            try:
                child.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + timeout_s
        for child in children:
            child.process.join(max(deadline - time.monotonic(), 0) if child.job_id is None else 0)
            if child.process.is_alive():
                child.process.kill()
                child.process.join(1)
            self._discard(child)
        self._idle.clear()
        self._busy.clear()


# ---------------------------------------------------------------- child side


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the worker dies, even by SIGKILL, so no pool process outlives it."""
    parent = multiprocessing.parent_process()
    die_with_parent(signal.SIGKILL, parent.pid if parent is not None else None)


def child_main(conn: multiprocessing.connection.Connection, modules: list[str]) -> None:
    """Run jobs sent over `conn` until told to stop. The parent owns shutdown signals."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    load_tasks(modules)
    out, err = capture_output()
    logging.basicConfig(level=logging.INFO, stream=err,
                        format="%(levelname)s %(name)s: %(message)s")

    def emit(kind: str, payload: tuple) -> None:
        conn.send((kind, *payload))

    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        job_id, attempt = item[0], item[1]
        ctx = JobContext(job_id, attempt, emit)
        token = enter(ctx)
        try:
            done = _run(item)
        finally:
            out.flush_job(ctx)
            err.flush_job(ctx)
            leave(token)
        conn.send(("done", job_id, attempt, *done))


def _run(item: tuple) -> Outcome:
    _, _, kind, task, args, kwargs, function = item
    try:
        value = run_function(function) if kind == "function" else REGISTRY[task](*args, **kwargs)
    except (SystemExit, KeyboardInterrupt):
        os._exit(1)
    except BaseException as exc:  # the task's failure is the job's result
        return failure(exc)
    return success(value)


def run_function(function: bytes) -> bytes:
    """A cloudpickled `{"fn", "calls": [(args, kwargs), ...]}`; returns the pickled result list.

    An exception in call `i` is re-raised as FunctionCallError carrying `i`.
    """
    import cloudpickle

    spec = cloudpickle.loads(function)
    results = []
    for index, (args, kwargs) in enumerate(spec["calls"]):
        try:
            results.append(spec["fn"](*args, **kwargs))
        except Exception as exc:
            raise FunctionCallError(index, exc) from exc
    return cloudpickle.dumps(results)
