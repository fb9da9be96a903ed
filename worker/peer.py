"""What a worker peer says to the broker, written once for the asyncio worker and its slots.

A `zjobs worker` is several peers of the broker: the worker process itself (async tasks,
`exec` programs, thread tasks) and each sync slot, a process of its own that runs plain
`def` tasks with no hop through the worker. Both kinds register, batch what they send,
report results, cut log lines and back off alike; this module holds those parts.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections import deque
from collections.abc import Container
from typing import Any

import structlog
import zmq

from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.curve import apply_client_curve
from zjobs.broker.wire.version import __version__
from zjobs.worker.errors import Outcome, error

log = structlog.get_logger(__name__)

# Chunks before the RESULT that lists them: the broker completes the job only once they came.
FLUSH_ORDER = (p.STARTED, p.LOG, p.PROGRESS, p.ARTIFACT_CHUNK, p.RESULT)
_TRUNCATED = " [line truncated: {size} bytes exceed the message limit]"


def ready_body(*, name: str, queues: list[str], capacity: int, prefetch: int,
               tasks: list[str], flags: list[str], heartbeat_interval_s: float,
               running: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A READY: who the peer is, what it runs, its credit and window, and what it still runs.

    `compact`: it reads JOBs in the compact form. `extra` carries `group` (a slot names its
    worker), `slots` and `caps`.
    """
    return {
        "name": name, "host": socket.gethostname(), "pid": os.getpid(), "queues": queues,
        "capacity": capacity, "prefetch": prefetch, "compact": True, "tasks": sorted(tasks),
        "version": __version__, "flags": flags, "heartbeat_interval_s": heartbeat_interval_s,
        "running": running, **extra,
    }


class Backoff:
    """Reconnect delays: from `initial_s` doubling to `max_s`, each with equal jitter (half
    fixed, half random) so that workers that lost the same broker do not all return at once."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.current_s = initial_s
        self.tries = 0  # connects since a broker last answered

    def next_delay(self, endpoints: int = 1) -> float:
        """The wait before the next connect. With several endpoints (a primary and its
        standbys), each is tried at once after the one that last answered: the wait
        applies, and grows, only after a full round of them without an answer. (Counting
        every connect instead made each second failover wait: a worker came back to the
        new primary after its restart grace, which then ran its jobs again elsewhere.)"""
        self.tries += 1
        if endpoints > 1 and self.tries % endpoints:
            return 0.0
        delay = self.current_s / 2 + random.uniform(0, self.current_s / 2)
        self.current_s = min(self.current_s * 2, self.max_s)
        return delay

    def reset(self) -> None:
        """A broker answered."""
        self.current_s = self.initial_s
        self.tries = 0


def fit_line(line: str, max_message: int) -> str:
    """The log line, cut to what one message carries (with a note saying so)."""
    room = p.max_body_bytes(max_message) - 1024
    if len(line) * 4 <= room:  # cheap: no UTF-8 line this short can exceed the room
        return line
    data = line.encode("utf-8", "replace")
    if len(data) <= room:
        return line
    note = _TRUNCATED.format(size=len(data))
    return data[:max(room - len(note), 0)].decode("utf-8", "ignore") + note


def result_body(job_id: str, attempt: int, outcome: Outcome, max_message: int,
                artifacts: list[dict[str, Any]] | None = None) -> bytes:
    """The packed RESULT of an attempt; one that does not fit a message fails it instead
    (`ResultTooLarge`), and one that msgpack cannot carry fails with ResultNotSerialisable."""
    ok, value, retry_in_s = outcome
    body: dict[str, Any] = {"job_id": job_id, "attempt": attempt, "ok": ok,
                            "result" if ok else "error": value}
    if retry_in_s is not None:
        body["retry_in_s"] = retry_in_s
    if artifacts:
        body["artifacts"] = artifacts
    try:
        packed = p.pack(body)
    except (TypeError, ValueError, OverflowError) as exc:
        body.pop("result", None)
        body.update(ok=False, error=error("ResultNotSerialisable",
                                          f"the result cannot be sent: {exc}"))
        packed = p.pack(body)
    if len(packed) <= p.max_body_bytes(max_message):
        return packed
    log.warning("job.result_too_large", job_id=job_id, bytes=len(packed), limit=max_message)
    message = (f"the result is {len(packed)} bytes packed, over the {max_message} byte message "
               "limit (--max-message); return less, or write it to out/ as an artifact")
    return p.pack({"job_id": job_id, "attempt": attempt, "ok": False,
                   "error": error("ResultTooLarge", message)})


def silence_s(config: Any) -> float:
    """How long either side of a connection may be silent before the other takes it for
    dead: the broker a peer (from the peer's last message), a peer the broker."""
    return config.heartbeat_interval_s * config.heartbeat_liveness


def resend_window_s(config: Any) -> float:
    """How long a peer keeps the results it sent (`PeerOutbox`): two silences, the most
    that can pass between a broker's death and the peer's next READY, plus its restart."""
    return 2 * silence_s(config)


RECENT_RESULT_MESSAGES = 4  # results kept to send again, in messages' worth (PeerOutbox)


class PeerOutbox:
    """What a peer has to say, batched until the next flush: one message per command.

    It also keeps the results it sent in the last `keep_s` (up to RECENT_RESULT_MESSAGES
    times the message limit): a broker killed before it committed a result never read it,
    and its successor would run that job again; a peer that registers again sends them
    once more (`resend_recent`).
    """

    __slots__ = ("max_message", "keep_s", "_out", "_started", "_recent", "_recent_bytes")

    def __init__(self, max_message: int, keep_s: float = 0.0) -> None:
        self.max_message = max_message
        self.keep_s = keep_s
        self._out: dict[bytes, list[bytes]] = {}
        self._started: dict[str, int] = {}
        self._recent: deque[tuple[float, list[bytes], int]] = deque()  # (sent, results, bytes)
        self._recent_bytes = 0

    def __bool__(self) -> bool:
        return bool(self._out or self._started)

    def started(self, job_id: str, attempt: int) -> None:
        self._started[job_id] = attempt

    def queue(self, command: bytes, body: dict[str, Any]) -> None:
        self.queue_packed(command, p.pack(body))

    def queue_packed(self, command: bytes, packed: bytes) -> None:
        self._out.setdefault(command, []).append(packed)

    def log_line(self, job_id: str, attempt: int, stream: str, line: str) -> None:
        self.queue(p.LOG, {"job_id": job_id, "attempt": attempt, "stream": stream,
                           "data": fit_line(line, self.max_message)})

    def forget(self, job_id: str) -> None:
        """A job that never started here (handed back): no STARTED for it."""
        self._started.pop(job_id, None)

    def take(self, running: Container[str]) -> list[list[bytes]]:
        """The messages to send now, in order; a STARTED only for a job still running (a job
        that ended since is started by its RESULT: one message instead of two)."""
        out, self._out = self._out, {}
        started = [p.pack({"job_id": j, "attempt": a}) for j, a in self._started.items()
                   if j in running]
        self._started.clear()
        if started:
            out[p.STARTED] = started + out.get(p.STARTED, [])
        results = out.get(p.RESULT)
        if results and self.keep_s:
            self._remember(results)
        return [p.encode_worker_packed(command, batch) for command in FLUSH_ORDER
                for batch in p.split_batches(out.get(command) or [], self.max_message)]

    def _remember(self, results: list[bytes]) -> None:
        now = time.monotonic()
        size = sum(map(len, results))
        recent, most = self._recent, RECENT_RESULT_MESSAGES * self.max_message
        recent.append((now, results, size))
        self._recent_bytes += size
        while recent and (recent[0][0] < now - self.keep_s or self._recent_bytes > most):
            self._recent_bytes -= recent.popleft()[2]

    def resend_recent(self) -> None:
        """Queue again the results sent in the last `keep_s`, to follow a new READY. A
        broker that has one already ignores it (the first terminal result of an attempt
        wins); a restarted one that never read it takes it instead of running the job
        again."""
        since = time.monotonic() - self.keep_s
        recent, self._recent, self._recent_bytes = self._recent, deque(), 0
        for sent, results, _ in recent:
            if sent >= since:
                for body in results:
                    self.queue_packed(p.RESULT, body)


def dealer(ctx: zmq.Context, endpoint: str, max_message: int, curve: Any) -> zmq.Socket:
    """A peer's DEALER to the broker's backend, connected to `endpoint`."""
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.sndhwm = sock.rcvhwm = 100_000
    sock.setsockopt(zmq.MAXMSGSIZE, max_message + 65536)
    if curve is not None:
        apply_client_curve(sock, curve)
    sock.connect(endpoint)
    return sock


class JobBuffer:
    """The jobs a peer holds beyond those it runs (its prefetch window), oldest first.

    None of them has started: the broker still shows them `queued`, and they are its
    again whenever the peer hands them back or registers anew. Dropping one also drops
    the STARTED the outbox may hold for it.
    """

    __slots__ = ("_jobs", "_outbox")

    def __init__(self, outbox: PeerOutbox) -> None:
        self._jobs: deque[dict[str, Any]] = deque()
        self._outbox = outbox

    def __len__(self) -> int:
        return len(self._jobs)

    def add(self, jobs: list[dict[str, Any]]) -> None:
        self._jobs.extend(jobs)

    def next(self) -> dict[str, Any]:
        return self._jobs.popleft()

    def drop(self, job_id: str) -> bool:
        """Take out a job the broker took back (a CANCEL); False if it is not here."""
        for job in self._jobs:
            if job["id"] == job_id:
                self._jobs.remove(job)
                self._outbox.forget(job_id)
                return True
        return False

    def take_all(self) -> list[str]:
        """Empty the buffer; the ids of what it held."""
        returned = [job["id"] for job in self._jobs]
        self._jobs.clear()
        for job_id in returned:
            self._outbox.forget(job_id)
        return returned


def hand_back(returned: list[str], *, drain: bool) -> list[bytes]:
    """The message that gives the broker back buffered jobs: `WINDOW {prefetch: 0}`, or,
    shutting down, `DISCONNECT {drain}` (nothing new from now on)."""
    if drain:
        return p.encode_worker(p.DISCONNECT, {"drain": True, "returned": returned})
    return p.encode_worker(p.WINDOW, {"prefetch": 0, "returned": returned})
