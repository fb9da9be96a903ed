"""Majordomo (MDP/0.2, ZeroMQ RFC 18, as majortomo speaks it) on an extra socket of the broker.

`zjobs broker --mdp ENDPOINT` runs this bridge in a thread of the broker process. The
bridge speaks ZJP/1 to the broker like any client and any worker, so a Majordomo request
gets everything a zjobs job gets (the durable store, retries, requeue on a lost worker,
events, REST and the dashboard) and the broker loop knows nothing of MDP:

- a client's REQUEST for service S is a job in queue S, task S, whose `args` are the
  request's body frames (bytes); the job's result is the list of reply frames. The
  requests read in one turn of the bridge are one `SUBMIT` batch, and the jobs of the
  batches answered in a turn are waited for with one `WAIT {ids, each: true}` (asking only
  for their outcome), answered in parts as they end: a few requests to the broker per turn,
  however many Majordomo requests the turn read;
- a worker's READY for S opens a ZJP worker connection of its own (name `mdp-S-<id>`,
  queue S, task S, one slot and a prefetch window); a JOB on it becomes a REQUEST to the
  Majordomo worker, whose client address frame is the job id, when the worker has answered
  the one before: the next request is at hand the moment a FINAL comes. The window follows
  the policy of every zjobs worker (broker/prefetch.py): about 50 ms of the worker's work,
  at most `PREFETCH_MAX` jobs, so that short requests never wait for a broker turn and long
  ones are not hoarded;
- the worker's PARTIAL replies go to the client at once and are the job's log lines; its
  FINAL reply is the job's RESULT; the client gets its FINAL when a WAIT part shows the
  job ended, which the broker sends only once that is stored: answered once, after the
  commit;
- a job still waiting in the window has not started (it shows `queued`). The bridge sends
  `STARTED` for a request its worker has held for `STALL_S` (a faster one's RESULT says
  it), and then closes the window and hands its jobs back (`WINDOW`), so that they go to an
  idle worker rather than wait behind a long request; the window opens when that request
  ends;
- a Majordomo worker silent for the heartbeat window (or one that sends DISCONNECT) has its
  ZJP connection closed with DISCONNECT: the broker requeues the job it ran for another
  worker, and puts those of its window back uncounted;
- `mmi.service` answers "200" when a Majordomo worker serves the service, else "404";
  any other `mmi.*` "501".

A failed job's FINAL is one frame, `error: <type>: <message>`; a request the broker refuses
(a service name that is no valid queue name, a body over its message limit) gets
`error: <code>: <message>`, and only that request: a refused batch is sent again one job
per SUBMIT. A malformed message is dropped and counted (`malformed`); nothing a peer sends
ends the thread. What the bridge holds (requests awaiting a reply) is memory: after a broker
restart the jobs are still stored and run, and their results are in the store, but a client
whose request was in flight gets no reply (a Majordomo client resends after its timeout).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import msgpack
import structlog
import zmq

from . import protocol as p
from .prefetch import STALL_S, PrefetchWindow, worth_telling
from .sockets import recv_frames, send_frames

log = structlog.get_logger(__name__)

CLIENT, WORKER = b"MDPC02", b"MDPW02"
READY, REQUEST, PARTIAL, FINAL, HEARTBEAT, DISCONNECT = (bytes([i]) for i in range(1, 7))
MIN_WORKER_EXPIRY_S = 7.5  # RFC 7's default window (2.5 s x 3): majortomo heartbeats at 2.5 s
PREFETCH_MAX = 16          # jobs a Majordomo worker's window holds at most (beside its slot)
WAIT_S = 30.0              # one WAIT slice; its jobs not ended by then are waited for again
WAIT_RESEND_S = WAIT_S + 15.0  # no last part by then: lost with a restarted broker, ask again
SUBMIT_FORGET_S = 120.0    # a SUBMIT never answered (the broker restarted): its clients resend
BATCH_JOBS = 1000          # jobs per SUBMIT (the Python client sends at most 2,000)
BATCH_BYTES = 1 << 20      # body bytes per SUBMIT, well under the broker's message limit
WAIT_IDS = 5000            # ids per WAIT
DRAIN = 1000               # messages read from one socket per turn, so none starves the others
FRONT_HWM = 100_000        # requests queued for the broker before a SUBMIT is refused here
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
_PEER_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError,
                UnicodeDecodeError, msgpack.UnpackException)


def local(endpoint: str) -> str:
    """Where to connect to reach a socket bound at `endpoint` on this host."""
    return endpoint.replace("tcp://*:", "tcp://127.0.0.1:").replace(
        "tcp://0.0.0.0:", "tcp://127.0.0.1:")


@dataclass(slots=True)
class _Held:
    """A job the broker handed to a Majordomo worker's connection."""

    job_id: str
    attempt: int
    args: list[bytes]
    since: float = 0.0     # when its REQUEST went to the Majordomo worker
    reported: bool = False  # its STARTED went to the broker


@dataclass(slots=True)
class _Worker:
    """One Majordomo worker, which the broker sees as a ZJP worker of its own."""

    identity: bytes
    service: str
    sock: zmq.Socket
    last_heard: float
    job: _Held | None = None  # the request it works on
    buffer: deque[_Held] = field(default_factory=deque)  # handed to it, not sent to it yet
    window: PrefetchWindow = field(
        default_factory=lambda: PrefetchWindow(PREFETCH_MAX, 1, time.monotonic()))
    announced: int = 0        # its window, as the broker was last told


@dataclass
class Stats:
    requests: int = 0
    replies: int = 0
    malformed: int = 0
    workers: int = 0
    submits: int = 0  # SUBMIT requests sent to the broker (each a batch of jobs)
    waits: int = 0    # WAIT requests sent to the broker


@dataclass(slots=True)
class _Submit:
    """A SUBMIT batch in flight: its jobs, and the client of each, in order."""

    clients: list[bytes]
    jobs: list[dict[str, Any]]
    sent_at: float


@dataclass(slots=True)
class _Wait:
    """A WAIT `{ids, each}` in flight: the ids not answered yet."""

    ids: set[str]
    sent_at: float


class MajordomoBridge:
    def __init__(self, endpoint: str, frontend: str, backend: str, *,
                 heartbeat_interval_s: float = 1.0, heartbeat_liveness: int = 3) -> None:
        self.interval_s = heartbeat_interval_s
        self.expiry_s = max(heartbeat_interval_s * heartbeat_liveness, MIN_WORKER_EXPIRY_S)
        self.stats = Stats()
        self._ctx = zmq.Context()
        self._mdp = self._ctx.socket(zmq.ROUTER)
        self._mdp.setsockopt(zmq.LINGER, 0)
        self._mdp.bind(endpoint)
        self._front = self._ctx.socket(zmq.DEALER)
        self._front.setsockopt(zmq.LINGER, 0)
        self._front.setsockopt(zmq.SNDHWM, FRONT_HWM)
        self._front.connect(local(frontend))
        self._backend = local(backend)
        self._poller = zmq.Poller()
        self._poller.register(self._mdp, zmq.POLLIN)
        self._poller.register(self._front, zmq.POLLIN)
        self._workers: dict[bytes, _Worker] = {}
        self._by_sock: dict[zmq.Socket, _Worker] = {}
        self._new: list[tuple[bytes, dict[str, Any]]] = []  # read this turn: (client, job)
        self._submits: dict[bytes, _Submit] = {}  # request id -> SUBMIT in flight
        self._clients: dict[str, bytes] = {}      # job id -> the client its FINAL goes to
        self._early: dict[str, list[list[bytes]]] = {}  # PARTIALs before their SUBMIT's OK
        self._to_wait: list[str] = []             # job ids to WAIT for at the turn's end
        self._waits: dict[bytes, _Wait] = {}      # request id -> WAIT in flight
        self._ids = itertools.count(1)
        self._packer = msgpack.Packer()  # this thread's own: protocol.pack is the broker's
        self._stop = threading.Event()
        self._now = time.monotonic()
        self._timers_at = 0.0
        self._beat_at = 0.0
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ life

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="mdp-bridge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        else:
            self._ctx.destroy(linger=0)  # never started: its sockets are closed here

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                self._turn()
        finally:
            for worker in list(self._workers.values()):
                self._drop(worker)
            self._ctx.destroy(linger=0)

    def _turn(self) -> None:
        """Read what every socket has, then send the turn's SUBMITs and WAITs, then timers."""
        timeout_ms = max(0.0, self._timers_at - time.monotonic()) * 1000
        ready = self._poller.poll(timeout_ms)
        self._now = time.monotonic()
        for sock, _ in ready:
            self._drain(sock)
        if self._now >= self._timers_at:
            self._timers_at = self._now + min(self.interval_s / 2, STALL_S)
            self._timers(self._now)
        if self._new or self._to_wait:
            self._flush()

    def _drain(self, sock: zmq.Socket) -> None:
        """Every message `sock` has, up to DRAIN."""
        if sock.closed:
            return  # a worker's, dropped earlier in this turn
        for _ in range(DRAIN):
            frames = recv_frames(sock)
            if frames is None:
                return
            try:
                self._dispatch(sock, frames)
            except _PEER_ERRORS as exc:
                self.stats.malformed += 1
                log.debug("mdp.malformed", error=repr(exc))

    def _dispatch(self, sock: zmq.Socket, frames: list[bytes]) -> None:
        if sock is self._mdp:
            self._from_mdp(frames)
        elif sock is self._front:
            self._from_broker_front(frames)
        else:
            worker = self._by_sock.get(sock)
            if worker is not None:  # else dropped earlier in this turn
                self._from_broker_back(worker, frames)

    # ------------------------------------------------------------ Majordomo peers

    def _from_mdp(self, frames: list[bytes]) -> None:
        if len(frames) < 4 or frames[1] != b"":
            raise ValueError("not an MDP/0.2 message")
        identity, header, command, body = frames[0], frames[2], frames[3], frames[4:]
        if header == CLIENT and command == REQUEST and body:
            self._request(identity, body[0].decode("ascii"), body[1:])
        elif header == WORKER:
            self._worker_says(identity, command, body)
        else:
            raise ValueError("unknown MDP header or command")

    def _request(self, client: bytes, service: str, body: list[bytes]) -> None:
        self.stats.requests += 1
        if service.startswith("mmi."):
            self._reply(client, FINAL, [self._mmi(service, body)])
            return
        self._new.append((client, {"task": service, "queue": service, "args": body}))

    def _mmi(self, service: str, body: list[bytes]) -> bytes:
        if service != "mmi.service" or not body:
            return b"501"
        wanted = body[0].decode("ascii")
        return b"200" if any(w.service == wanted for w in self._workers.values()) else b"404"

    def _worker_says(self, identity: bytes, command: bytes, body: list[bytes]) -> None:
        worker = self._workers.get(identity)
        if command == READY and body:
            if worker is not None:
                self._drop(worker)
            self._register(identity, body[0].decode("ascii"))
            return
        if worker is None:  # not registered here (a restarted broker): it must READY again
            send_frames(self._mdp, [identity, b"", WORKER, DISCONNECT])
            return
        worker.last_heard = self._now
        if command in (PARTIAL, FINAL) and len(body) >= 2:
            self._worker_reply(worker, command, body[0].decode(), body[2:])
        elif command == DISCONNECT:
            self._drop(worker)
        elif command != HEARTBEAT:
            raise ValueError("unknown MDP worker command")

    def _register(self, identity: bytes, service: str) -> None:
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self._backend)
        worker = _Worker(identity, service, sock, self._now)
        self._workers[identity] = worker
        self._by_sock[sock] = worker
        self._poller.register(sock, zmq.POLLIN)
        self.stats.workers += 1
        self._ready(worker)
        log.info("mdp.worker_ready", service=service, worker=identity.hex())

    def _ready(self, worker: _Worker) -> None:
        job = worker.job
        running = [{"job_id": job.job_id, "attempt": job.attempt}] if job else []
        worker.announced = worker.window.size()
        self._send_back(worker, p.READY, {
            "name": f"mdp-{worker.service}-{worker.identity.hex()}", "queues": [worker.service],
            "capacity": 1, "prefetch": worker.announced,
            "tasks": [worker.service], "pid": os.getpid(), "version": "mdp/0.2",
            "heartbeat_interval_s": self.interval_s, "running": running})

    def _worker_reply(self, worker: _Worker, command: bytes, job_id: str,
                      frames: list[bytes]) -> None:
        job = worker.job
        if job is None or job.job_id != job_id:
            return  # an answer to a job it no longer holds (cancelled, requeued): dropped
        if command == PARTIAL:
            self._send_back(worker, p.LOG, {"job_id": job_id, "attempt": job.attempt,
                                            "stream": "stdout", "data": _text(frames)})
            self._partial(job_id, frames)
            return
        self._send_back(worker, p.RESULT, {"job_id": job_id, "attempt": job.attempt,
                                           "ok": True, "result": frames})
        worker.window.finished(self._now - job.since)
        self._next(worker)

    def _next(self, worker: _Worker) -> None:
        """The worker is free: send it the next job of its window, if there is one; the
        window follows how long its requests take (and opens again after a long one)."""
        worker.job = None
        size = worker.window.size()
        if worth_telling(worker.announced, size):
            worker.announced = size
            self._send_back(worker, p.WINDOW, {"prefetch": size})
        if worker.buffer:
            job = worker.job = worker.buffer.popleft()
            job.since = self._now
            worker.window.started(self._now)
            send_frames(self._mdp, [worker.identity, b"", WORKER, REQUEST, job.job_id.encode(),
                                    b"", *job.args])

    def _drop(self, worker: _Worker) -> None:
        """The Majordomo worker is gone: the broker requeues what it ran, and puts what its
        window held back uncounted (those never started)."""
        self._workers.pop(worker.identity, None)
        self._by_sock.pop(worker.sock, None)
        self._poller.unregister(worker.sock)
        if worker.job is not None:
            self._report_started(worker, worker.job)  # it may have run: an attempt
        try:
            send_frames(worker.sock, [p.WORKER_HEADER, p.DISCONNECT])
        except zmq.ZMQError:
            pass
        worker.sock.close(linger=100)
        log.info("mdp.worker_gone", service=worker.service, worker=worker.identity.hex())

    def _reply(self, client: bytes, command: bytes, frames: list[bytes]) -> None:
        if command == FINAL:
            self.stats.replies += 1  # counted first: the client may read it the moment it goes
        send_frames(self._mdp, [client, b"", CLIENT, command, *frames])

    def _partial(self, job_id: str, frames: list[bytes]) -> None:
        client = self._clients.get(job_id)
        if client is not None:
            self._reply(client, PARTIAL, frames)
        elif self._submits:  # the JOB went out before the commit, the SUBMIT's OK after it
            self._early.setdefault(job_id, []).append(frames)

    # ------------------------------------------------------------ the broker, as a worker

    def _from_broker_back(self, worker: _Worker, frames: list[bytes]) -> None:
        if len(frames) < 2 or frames[0] != p.WORKER_HEADER:
            raise ValueError("not a ZJP worker message")
        command, bodies = frames[1], [msgpack.unpackb(b) for b in frames[2:]]
        if command == p.JOB:
            for job in bodies:
                self._job(worker, job)
            if worker.job is None:
                self._next(worker)
        elif command == p.CANCEL_JOB:
            for body in bodies:
                self._cancel(worker, body["job_id"])
        elif command == p.DISCONNECT:  # the broker restarted: register again, with the job
            worker.buffer.clear()      # we run; those of the window are queued in its store
            self._ready(worker)

    def _job(self, worker: _Worker, job: dict[str, Any]) -> None:
        job_id, attempt = job["id"], job["attempt"]
        args = msgpack.unpackb(job["payload"]).get("args", []) if job.get("payload") else []
        if not isinstance(args, list) or not all(isinstance(a, bytes) for a in args):
            self._send_back(worker, p.RESULT, {"job_id": job_id, "attempt": attempt, "ok": False,
                                               "error": _error("BadRequest", "a Majordomo job's "
                                                               "args are its body frames")})
            return
        worker.buffer.append(_Held(job_id, attempt, args))

    def _cancel(self, worker: _Worker, job_id: str) -> None:
        job = worker.job
        if job is not None and job.job_id == job_id:
            self._send_back(worker, p.RESULT, {"job_id": job_id, "attempt": job.attempt,
                                               "ok": False, "error": _error("Cancelled", "")})
            self._next(worker)
            return
        for held in worker.buffer:  # never started: it leaves the window, no RESULT owed
            if held.job_id == job_id:
                worker.buffer.remove(held)
                return

    def _report_started(self, worker: _Worker, job: _Held) -> None:
        if not job.reported:
            job.reported = True
            self._send_back(worker, p.STARTED, {"job_id": job.job_id, "attempt": job.attempt})

    def _send_back(self, worker: _Worker, command: bytes, body: dict[str, Any]) -> None:
        self._send_back_raw(worker, [p.WORKER_HEADER, command, self._packer.pack(body)])

    def _send_back_raw(self, worker: _Worker, frames: list[bytes]) -> None:
        try:
            send_frames(worker.sock, frames)
        except zmq.Again:  # the broker has not read 1000 messages: it is gone, not slow
            log.debug("mdp.backend_full", worker=worker.identity.hex())

    # ------------------------------------------------------------ the broker, as a client

    def _flush(self) -> None:
        """The turn's new requests as SUBMIT batches; one WAIT for the jobs stored since."""
        new, self._new = self._new, []
        for batch in _batches(new):
            self._submit(batch)
        wanted, self._to_wait = self._to_wait, []
        for start in range(0, len(wanted), WAIT_IDS):
            self._wait(wanted[start:start + WAIT_IDS])

    def _submit(self, batch: list[tuple[bytes, dict[str, Any]]]) -> None:
        clients, jobs = [c for c, _ in batch], [j for _, j in batch]
        rid = self._send_front(p.SUBMIT, {"jobs": jobs})
        if rid is None:
            self._refused(clients, "unavailable", "the broker is not reading its requests")
            return
        self._submits[rid] = _Submit(clients, jobs, self._now)
        self.stats.submits += 1

    def _wait(self, ids: list[str]) -> None:
        rid = self._send_front(p.WAIT, {"ids": ids, "each": True, "timeout": WAIT_S,
                                        "fields": "outcome"})  # id, status, result, error
        if rid is None:
            rid = next(self._ids).to_bytes(8, "big")  # unsent: the resend timer asks again
        self._waits[rid] = _Wait(set(ids), self._now)
        self.stats.waits += 1

    def _send_front(self, command: bytes, body: dict[str, Any]) -> bytes | None:
        rid = next(self._ids).to_bytes(8, "big")
        try:
            send_frames(self._front, [p.CLIENT_HEADER, command, rid, self._packer.pack(body)])
        except zmq.Again:
            return None
        return rid

    def _from_broker_front(self, frames: list[bytes]) -> None:
        if len(frames) != 4 or frames[0] != p.CLIENT_HEADER:
            raise ValueError("not a ZJP reply")
        rid, ok = frames[2], frames[1] == p.OK
        submit = self._submits.pop(rid, None)
        if submit is not None:
            self._submitted(submit, ok, msgpack.unpackb(frames[3]))
            return
        wait = self._waits.get(rid)
        if wait is None:
            return  # a reply we stopped waiting for (asked again since)
        body = msgpack.unpackb(frames[3])
        if not ok:
            del self._waits[rid]
            self._refused([c for i in wait.ids if (c := self._clients.pop(i, None))],
                          body.get("code"), body.get("message"))
            return
        self._waited(rid, wait, body)

    def _submitted(self, submit: _Submit, ok: bool, body: dict[str, Any]) -> None:
        if ok:
            for job_id, client in zip(body["ids"], submit.clients, strict=True):
                self._clients[job_id] = client
                for frames in self._early.pop(job_id, ()):
                    self._reply(client, PARTIAL, frames)
            self._to_wait.extend(body["ids"])
        elif len(submit.jobs) > 1 and body.get("code") != "unavailable":
            for pair in zip(submit.clients, submit.jobs, strict=True):  # one job spoiled it:
                self._submit([pair])                                    # each on its own
        else:
            self._refused(submit.clients, body.get("code"), body.get("message"))
        if not self._submits:
            self._early.clear()  # PARTIALs of jobs no SUBMIT of ours is waiting for

    def _refused(self, clients: list[bytes], code: Any, message: Any) -> None:
        for client in clients:
            self._reply(client, FINAL, [f"error: {code}: {message}".encode()])

    def _waited(self, rid: bytes, wait: _Wait, body: dict[str, Any]) -> None:
        """A part of an `each` WAIT: answer the clients of the jobs that ended."""
        for job in body["jobs"]:
            if job["status"] in TERMINAL:
                wait.ids.discard(job["id"])
                self._answer(job)
        for job_id in body.get("missing", ()):  # stored, then gone (purged): say so
            wait.ids.discard(job_id)
            client = self._clients.pop(job_id, None)
            if client is not None:
                self._reply(client, FINAL, [b"error: NotFound: the broker lost the job"])
        if not body.get("more"):  # the last part: what has not ended is waited for again
            del self._waits[rid]
            self._to_wait.extend(i for i in wait.ids if i in self._clients)

    def _answer(self, job: dict[str, Any]) -> None:
        client = self._clients.pop(job["id"], None)
        if client is None:
            return  # answered already (two WAITs held it)
        if job["status"] == "succeeded":
            result = job.get("result")
            frames = result if isinstance(result, list) else [msgpack.packb(result)]
            self._reply(client, FINAL, [f if isinstance(f, bytes) else str(f).encode()
                                        for f in frames])
        else:
            error = job.get("error") or {}
            self._reply(client, FINAL, [
                f"error: {error.get('type', job['status'])}: {error.get('message', '')}".encode()])

    # ------------------------------------------------------------ time

    def _timers(self, now: float) -> None:
        for worker in [w for w in self._workers.values() if now - w.last_heard > self.expiry_s]:
            log.info("mdp.worker_expired", service=worker.service)
            self._drop(worker)
        for worker in self._workers.values():
            self._keep_time(worker, now)
        self._resend_waits(now)
        self._forget_submits(now)
        if now - self._beat_at >= self.interval_s:
            self._beat_at = now
            for worker in self._workers.values():
                send_frames(self._mdp, [worker.identity, b"", WORKER, HEARTBEAT])
                self._send_back_raw(worker, [p.WORKER_HEADER, p.HEARTBEAT])

    def _keep_time(self, worker: _Worker, now: float) -> None:
        """A request its worker has held for STALL_S: the broker shows it started, and the
        jobs waiting behind it go back to their queue for an idle worker to take."""
        job = worker.job
        if job is not None and now - job.since >= STALL_S:
            self._report_started(worker, job)
        worker.window.check(now, busy=job is not None)
        if worker.window.closed and (worker.buffer or worker.announced):
            returned = [held.job_id for held in worker.buffer]
            worker.buffer.clear()
            worker.announced = 0
            self._send_back(worker, p.WINDOW, {"prefetch": 0, "returned": returned})

    def _resend_waits(self, now: float) -> None:
        for rid in [r for r, w in self._waits.items() if now - w.sent_at > WAIT_RESEND_S]:
            wait = self._waits.pop(rid)  # its last part was lost (a restarted broker)
            self._to_wait.extend(i for i in wait.ids if i in self._clients)

    def _forget_submits(self, now: float) -> None:
        for rid in [r for r, s in self._submits.items() if now - s.sent_at > SUBMIT_FORGET_S]:
            del self._submits[rid]
            log.info("mdp.submit_unanswered", request=rid.hex())
        if not self._submits:
            self._early.clear()


def _batches(new: list[tuple[bytes, dict[str, Any]]]) -> list[list[tuple[bytes, dict]]]:
    """`new` in order, cut into SUBMITs of at most BATCH_JOBS jobs and about BATCH_BYTES."""
    batches: list[list[tuple[bytes, dict]]] = []
    size = BATCH_BYTES + 1
    for pair in new:
        weight = sum(len(a) for a in pair[1]["args"]) + 64
        if size + weight > BATCH_BYTES or len(batches[-1]) >= BATCH_JOBS:
            batches.append([])
            size = 0
        batches[-1].append(pair)
        size += weight
    return batches


def _text(frames: list[bytes]) -> str:
    return " ".join(f.decode("utf-8", "replace") for f in frames)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": kind, "message": message, "traceback": None}
