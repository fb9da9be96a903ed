"""Majordomo (MDP/0.2, ZeroMQ RFC 18, as majortomo speaks it) on an extra socket of the broker.

`zjobs broker --mdp ENDPOINT` runs this bridge in a thread of the broker process. The
bridge speaks ZJP/1 to the broker like any client and any worker, so a Majordomo request
gets everything a zjobs job gets (the durable store, retries, requeue on a lost worker,
events, REST and the dashboard) and the broker loop knows nothing of MDP:

- a client's REQUEST for service S is a job in queue S, task S, whose `args` are the
  request's body frames (bytes); the job's result is the list of reply frames. The
  requests read in one turn of the bridge are one `SUBMIT` batch, and the bridge waits for
  their jobs with one `WAIT {ids, each: true}`, answered in parts as the jobs end: two
  requests to the broker per turn, however many Majordomo requests it read;
- a worker's READY for S opens a ZJP worker connection of its own (name `mdp-S-<id>`,
  queue S, task S, credit 1); a JOB on it becomes a REQUEST to the Majordomo worker, whose
  client address frame is the job id;
- the worker's PARTIAL replies go to the client at once and are the job's log lines; its
  FINAL reply is the job's RESULT; the client gets its FINAL when a WAIT part shows the
  job ended, which the broker sends only once that is stored: answered once, after the
  commit;
- a Majordomo worker silent for the heartbeat window (or one that sends DISCONNECT) has its
  ZJP connection closed with DISCONNECT: the broker requeues its job for another worker;
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
from dataclasses import dataclass
from typing import Any

import msgpack
import structlog
import zmq

from . import protocol as p
from .jobs import new_job_id
from .sockets import send_frames

log = structlog.get_logger(__name__)

CLIENT, WORKER = b"MDPC02", b"MDPW02"
READY, REQUEST, PARTIAL, FINAL, HEARTBEAT, DISCONNECT = (bytes([i]) for i in range(1, 7))
MIN_WORKER_EXPIRY_S = 7.5  # RFC 7's default window (2.5 s x 3): majortomo heartbeats at 2.5 s
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
class _Worker:
    """One Majordomo worker, which the broker sees as a ZJP worker of its own."""

    identity: bytes
    service: str
    sock: zmq.Socket
    last_heard: float
    job: tuple[str, int] | None = None  # (job id, attempt) it runs


@dataclass
class Stats:
    requests: int = 0
    replies: int = 0
    malformed: int = 0
    workers: int = 0
    submits: int = 0  # SUBMIT requests sent to the broker (each a batch of jobs)
    waits: int = 0    # WAIT requests sent to the broker


@dataclass(slots=True)
class _Request:
    """A client request the bridge answers when its job has ended."""

    client: bytes
    job: dict[str, Any]      # what was submitted, with the id the bridge gave it
    confirmed: bool = False  # the broker answered its SUBMIT: the job is stored


@dataclass(slots=True)
class _Sent:
    """A SUBMIT (`ids` in order) or a WAIT (`ids` not answered yet) the broker has to answer."""

    ids: Any  # list[str] for a SUBMIT, set[str] for a WAIT
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
        self._requests: dict[str, _Request] = {}  # job id -> the request it answers
        self._new: list[str] = []       # job ids read this turn, submitted at its end
        self._rewait: list[str] = []    # job ids to wait for again at the turn's end
        self._submits: dict[bytes, _Sent] = {}  # request id -> SUBMIT in flight
        self._waits: dict[bytes, _Sent] = {}    # request id -> WAIT in flight
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

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                self._turn()
        finally:
            for worker in list(self._workers.values()):
                self._drop(worker)
            self._ctx.destroy(linger=0)

    def _turn(self) -> None:
        """Read what every socket has, then send the turn's SUBMIT and WAIT, then timers."""
        timeout_ms = max(0.0, self._timers_at - time.monotonic()) * 1000
        ready = self._poller.poll(timeout_ms)
        self._now = time.monotonic()
        for sock, _ in ready:
            self._drain(sock)
        if self._new or self._rewait:
            self._flush()
        if self._now >= self._timers_at:
            self._timers_at = self._now + self.interval_s / 2
            self._timers(self._now)

    def _drain(self, sock: zmq.Socket) -> None:
        if sock.closed:
            return  # a worker's, dropped earlier in this turn
        for _ in range(DRAIN):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
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
        job_id = new_job_id()  # given here, so the WAIT can go with the SUBMIT
        self._requests[job_id] = _Request(client, {"id": job_id, "task": service,
                                                   "queue": service, "args": body})
        self._new.append(job_id)

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
            self._mdp.send_multipart([identity, b"", WORKER, DISCONNECT])
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
        running = [{"job_id": worker.job[0], "attempt": worker.job[1]}] if worker.job else []
        self._send_back(worker, p.READY, {
            "name": f"mdp-{worker.service}-{worker.identity.hex()}", "queues": [worker.service],
            "capacity": 1, "tasks": [worker.service], "pid": os.getpid(),
            "version": "mdp/0.2", "heartbeat_interval_s": self.interval_s,
            "running": running})

    def _worker_reply(self, worker: _Worker, command: bytes, job_id: str,
                      frames: list[bytes]) -> None:
        if worker.job is None or worker.job[0] != job_id:
            return  # an answer to a job it no longer holds (cancelled, requeued): dropped
        attempt = worker.job[1]
        if command == PARTIAL:
            self._send_back(worker, p.LOG, {"job_id": job_id, "attempt": attempt,
                                            "stream": "stdout", "data": _text(frames)})
            request = self._requests.get(job_id)
            if request is not None:
                self._reply(request.client, PARTIAL, frames)
            return
        worker.job = None
        self._send_back(worker, p.RESULT, {"job_id": job_id, "attempt": attempt, "ok": True,
                                           "result": frames})

    def _drop(self, worker: _Worker) -> None:
        """The Majordomo worker is gone: the broker requeues what it ran."""
        self._workers.pop(worker.identity, None)
        self._by_sock.pop(worker.sock, None)
        self._poller.unregister(worker.sock)
        try:
            send_frames(worker.sock, [p.WORKER_HEADER, p.DISCONNECT])
        except zmq.ZMQError:
            pass
        worker.sock.close(linger=100)
        log.info("mdp.worker_gone", service=worker.service, worker=worker.identity.hex())

    def _reply(self, client: bytes, command: bytes, frames: list[bytes]) -> None:
        send_frames(self._mdp, [client, b"", CLIENT, command, *frames])
        if command == FINAL:
            self.stats.replies += 1

    # ------------------------------------------------------------ the broker, as a worker

    def _from_broker_back(self, worker: _Worker, frames: list[bytes]) -> None:
        if len(frames) < 2 or frames[0] != p.WORKER_HEADER:
            raise ValueError("not a ZJP worker message")
        command, bodies = frames[1], [msgpack.unpackb(b) for b in frames[2:]]
        if command == p.JOB:
            for job in bodies:
                self._job(worker, job)
        elif command == p.CANCEL_JOB:
            for body in bodies:
                self._cancel(worker, body["job_id"])
        elif command == p.DISCONNECT:
            self._ready(worker)  # the broker restarted: register again, with the job we run

    def _job(self, worker: _Worker, job: dict[str, Any]) -> None:
        job_id, attempt = job["id"], job["attempt"]
        args = msgpack.unpackb(job["payload"]).get("args", []) if job.get("payload") else []
        if worker.job is not None or not all(isinstance(a, bytes) for a in args):
            self._send_back(worker, p.RESULT, {"job_id": job_id, "attempt": attempt, "ok": False,
                                               "error": _error("BadRequest", "a Majordomo job's "
                                                               "args are its body frames")})
            return
        worker.job = (job_id, attempt)
        send_frames(self._mdp, [worker.identity, b"", WORKER, REQUEST, job_id.encode(), b"",
                                *args])

    def _cancel(self, worker: _Worker, job_id: str) -> None:
        if worker.job is not None and worker.job[0] == job_id:
            self._send_back(worker, p.RESULT, {"job_id": job_id, "attempt": worker.job[1],
                                               "ok": False, "error": _error("Cancelled", "")})
            worker.job = None

    def _send_back(self, worker: _Worker, command: bytes, body: dict[str, Any]) -> None:
        try:
            send_frames(worker.sock, [p.WORKER_HEADER, command, self._packer.pack(body)])
        except zmq.Again:  # the broker has not read 1000 messages: it is gone, not slow
            log.debug("mdp.backend_full", worker=worker.identity.hex())

    # ------------------------------------------------------------ the broker, as a client

    def _flush(self) -> None:
        """The turn's new requests as SUBMIT batches, and one WAIT for them and the rewaits."""
        new, self._new = self._new, []
        for batch in _batches(new, self._requests):
            self._submit(batch)
        wanted, self._rewait = new + self._rewait, []
        for start in range(0, len(wanted), WAIT_IDS):
            self._wait(wanted[start:start + WAIT_IDS])

    def _submit(self, ids: list[str]) -> None:
        jobs = [self._requests[i].job for i in ids]
        rid = self._send_front(p.SUBMIT, {"jobs": jobs})
        if rid is None:
            self._refused(ids, "unavailable", "the broker is not reading its requests")
            return
        self._submits[rid] = _Sent(ids, self._now)
        self.stats.submits += 1

    def _wait(self, ids: list[str]) -> None:
        rid = self._send_front(p.WAIT, {"ids": ids, "each": True, "timeout": WAIT_S})
        if rid is None:
            rid = next(self._ids).to_bytes(8, "big")  # unsent: the resend timer asks again
        self._waits[rid] = _Sent(set(ids), self._now)
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
            self._submitted(submit.ids, ok, msgpack.unpackb(frames[3]))
            return
        wait = self._waits.get(rid)
        if wait is None:
            return  # a reply we stopped waiting for (asked again since)
        body = msgpack.unpackb(frames[3])
        if not ok:
            del self._waits[rid]
            self._refused(list(wait.ids), body.get("code"), body.get("message"))
            return
        self._waited(rid, wait, body)

    def _submitted(self, ids: list[str], ok: bool, body: dict[str, Any]) -> None:
        if ok:
            for job_id in ids:
                request = self._requests.get(job_id)
                if request is not None:
                    request.confirmed = True
            return
        if len(ids) > 1 and body.get("code") != "unavailable":  # one job spoiled the batch
            alive = [i for i in ids if i in self._requests]
            for job_id in alive:
                self._submit([job_id])
            self._rewait.extend(alive)  # the batch's WAIT found none of them
            return
        self._refused(ids, body.get("code"), body.get("message"))

    def _refused(self, ids: list[str], code: Any, message: Any) -> None:
        for job_id in ids:
            request = self._requests.pop(job_id, None)
            if request is not None:
                self._reply(request.client, FINAL, [f"error: {code}: {message}".encode()])

    def _waited(self, rid: bytes, wait: _Sent, body: dict[str, Any]) -> None:
        """A part of an `each` WAIT: answer the clients of the jobs that ended."""
        for job in body["jobs"]:
            if job["status"] in TERMINAL:
                wait.ids.discard(job["id"])
                self._answer(job)
        for job_id in body.get("missing", ()):
            wait.ids.discard(job_id)
            self._missing(job_id)
        if not body.get("more"):  # the last part: what has not ended is waited for again
            del self._waits[rid]
            self._rewait.extend(i for i in wait.ids if i in self._requests)

    def _missing(self, job_id: str) -> None:
        """The broker does not know the job: its SUBMIT was refused (its reply answers the
        client), or, once it was stored, the job is gone (purged): say so."""
        request = self._requests.get(job_id)
        if request is not None and request.confirmed:
            del self._requests[job_id]
            self._reply(request.client, FINAL, [b"error: NotFound: the broker lost the job"])

    def _answer(self, job: dict[str, Any]) -> None:
        request = self._requests.pop(job["id"], None)
        if request is None:
            return  # answered already (two WAITs held it)
        if job["status"] == "succeeded":
            result = job.get("result")
            frames = result if isinstance(result, list) else [msgpack.packb(result)]
            self._reply(request.client, FINAL, [f if isinstance(f, bytes) else str(f).encode()
                                                for f in frames])
        else:
            error = job.get("error") or {}
            self._reply(request.client, FINAL, [
                f"error: {error.get('type', job['status'])}: {error.get('message', '')}".encode()])

    # ------------------------------------------------------------ time

    def _timers(self, now: float) -> None:
        for worker in [w for w in self._workers.values() if now - w.last_heard > self.expiry_s]:
            log.info("mdp.worker_expired", service=worker.service)
            self._drop(worker)
        self._resend_waits(now)
        self._forget_submits(now)
        if now - self._beat_at >= self.interval_s:
            self._beat_at = now
            for worker in self._workers.values():
                send_frames(self._mdp, [worker.identity, b"", WORKER, HEARTBEAT])
                self._send_back_raw(worker, [p.WORKER_HEADER, p.HEARTBEAT])

    def _send_back_raw(self, worker: _Worker, frames: list[bytes]) -> None:
        try:
            send_frames(worker.sock, frames)
        except zmq.Again:
            pass  # the broker is gone: the heartbeat would tell it nothing

    def _resend_waits(self, now: float) -> None:
        for rid in [r for r, w in self._waits.items() if now - w.sent_at > WAIT_RESEND_S]:
            wait = self._waits.pop(rid)  # its last part was lost (a restarted broker)
            self._rewait.extend(i for i in wait.ids if i in self._requests)
        if self._rewait:
            self._flush()

    def _forget_submits(self, now: float) -> None:
        for rid in [r for r, s in self._submits.items() if now - s.sent_at > SUBMIT_FORGET_S]:
            for job_id in self._submits.pop(rid).ids:
                request = self._requests.get(job_id)
                if request is not None and not request.confirmed:
                    del self._requests[job_id]
            log.info("mdp.submit_unanswered", request=rid.hex())


def _batches(ids: list[str], requests: dict[str, _Request]) -> list[list[str]]:
    """`ids` in order, cut into SUBMITs of at most BATCH_JOBS jobs and about BATCH_BYTES."""
    batches: list[list[str]] = [[]] if ids else []
    size = 0
    for job_id in ids:
        weight = sum(len(a) for a in requests[job_id].job["args"]) + 64
        if batches[-1] and (len(batches[-1]) >= BATCH_JOBS or size + weight > BATCH_BYTES):
            batches.append([])
            size = 0
        batches[-1].append(job_id)
        size += weight
    return batches


def _text(frames: list[bytes]) -> str:
    return " ".join(f.decode("utf-8", "replace") for f in frames)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": kind, "message": message, "traceback": None}
