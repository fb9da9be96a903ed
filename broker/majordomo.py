"""Majordomo (MDP/0.2, ZeroMQ RFC 18, as majortomo speaks it) on an extra socket of the broker.

`zjobs broker --mdp ENDPOINT` runs this bridge in a thread of the broker process. The
bridge speaks ZJP/1 to the broker like any client and any worker, so a Majordomo request
gets everything a zjobs job gets (the durable store, retries, requeue on a lost worker,
events, REST and the dashboard) and the broker loop knows nothing of MDP:

- a client's REQUEST for service S is a SUBMIT of a job in queue S, task S, whose `args`
  are the request's body frames (bytes); the job's result is the list of reply frames;
- a worker's READY for S opens a ZJP worker connection of its own (name `mdp-S-<id>`,
  queue S, task S, credit 1); a JOB on it becomes a REQUEST to the Majordomo worker, whose
  client address frame is the job id;
- the worker's PARTIAL replies go to the client at once and are the job's log lines; its
  FINAL reply is the job's RESULT; the client gets its FINAL when the broker has stored the
  job as ended (a WAIT), so it is answered once, after the commit;
- a Majordomo worker silent for the heartbeat window (or one that sends DISCONNECT) has its
  ZJP connection closed with DISCONNECT: the broker requeues its job for another worker;
- `mmi.service` answers "200" when a Majordomo worker serves the service, else "404";
  any other `mmi.*` "501".

A failed job's FINAL is one frame, `error: <type>: <message>`. A malformed message is
dropped and counted (`malformed`); nothing a peer sends ends the thread. What the bridge
holds (requests awaiting a reply) is memory: after a broker restart the jobs are still
stored and run, and their results are in the store, but a client whose request was in
flight gets no reply (a Majordomo client resends after its timeout).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import msgpack
import structlog
import zmq

from . import protocol as p

log = structlog.get_logger(__name__)

CLIENT, WORKER = b"MDPC02", b"MDPW02"
READY, REQUEST, PARTIAL, FINAL, HEARTBEAT, DISCONNECT = (bytes([i]) for i in range(1, 7))
MIN_WORKER_EXPIRY_S = 7.5  # RFC 7's default window (2.5 s x 3): majortomo heartbeats at 2.5 s
WAIT_S = 5.0               # one WAIT slice; a reply lost with a restarted broker is resent
WAIT_RESEND_S = 15.0


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


@dataclass
class _Pending:
    """A client request the bridge answers when its job has ended."""

    client: bytes
    job_id: str | None = None
    waited_at: float = field(default=0.0)


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
        self._front.connect(local(frontend))
        self._backend = local(backend)
        self._workers: dict[bytes, _Worker] = {}
        self._by_sock: dict[zmq.Socket, _Worker] = {}
        self._pending: dict[bytes, _Pending] = {}   # request id -> what it is for
        self._by_job: dict[str, bytes] = {}         # job id -> its WAIT's request id
        self._ids = itertools.count(1)
        self._stop = threading.Event()
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
        poller = zmq.Poller()
        for sock in (self._mdp, self._front, *self._by_sock):
            poller.register(sock, zmq.POLLIN)
        for sock, _ in poller.poll(self.interval_s * 500):
            frames = sock.recv_multipart(zmq.NOBLOCK)
            try:
                self._dispatch(sock, frames)
            except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError,
                    msgpack.UnpackException) as exc:
                self.stats.malformed += 1
                log.debug("mdp.malformed", error=repr(exc))
        self._timers(time.monotonic())

    def _dispatch(self, sock: zmq.Socket, frames: list[bytes]) -> None:
        if sock is self._mdp:
            self._from_mdp(frames)
        elif sock is self._front:
            self._from_broker_front(frames)
        else:
            self._from_broker_back(self._by_sock[sock], frames)

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
        rid = self._send_front(p.SUBMIT, {"task": service, "queue": service, "args": body})
        self._pending[rid] = _Pending(client)

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
        worker.last_heard = time.monotonic()
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
        worker = _Worker(identity, service, sock, time.monotonic())
        self._workers[identity] = worker
        self._by_sock[sock] = worker
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
            client = self._client_of(job_id)
            if client is not None:
                self._reply(client, PARTIAL, frames)
            return
        worker.job = None
        self._send_back(worker, p.RESULT, {"job_id": job_id, "attempt": attempt, "ok": True,
                                           "result": frames})

    def _drop(self, worker: _Worker) -> None:
        """The Majordomo worker is gone: the broker requeues what it ran."""
        self._workers.pop(worker.identity, None)
        self._by_sock.pop(worker.sock, None)
        try:
            worker.sock.send_multipart([p.WORKER_HEADER, p.DISCONNECT], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
        worker.sock.close(linger=100)
        log.info("mdp.worker_gone", service=worker.service, worker=worker.identity.hex())

    def _reply(self, client: bytes, command: bytes, frames: list[bytes]) -> None:
        self._mdp.send_multipart([client, b"", CLIENT, command, *frames])
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
        self._mdp.send_multipart([worker.identity, b"", WORKER, REQUEST, job_id.encode(), b"",
                                  *args])

    def _cancel(self, worker: _Worker, job_id: str) -> None:
        if worker.job is not None and worker.job[0] == job_id:
            self._send_back(worker, p.RESULT, {"job_id": job_id, "attempt": worker.job[1],
                                               "ok": False, "error": _error("Cancelled", "")})
            worker.job = None

    def _send_back(self, worker: _Worker, command: bytes, body: dict[str, Any]) -> None:
        worker.sock.send_multipart([p.WORKER_HEADER, command, msgpack.packb(body)])

    # ------------------------------------------------------------ the broker, as a client

    def _send_front(self, command: bytes, body: dict[str, Any]) -> bytes:
        rid = next(self._ids).to_bytes(8, "big")
        self._front.send_multipart([p.CLIENT_HEADER, command, rid, msgpack.packb(body)])
        return rid

    def _from_broker_front(self, frames: list[bytes]) -> None:
        if len(frames) != 4 or frames[0] != p.CLIENT_HEADER:
            raise ValueError("not a ZJP reply")
        pending = self._pending.pop(frames[2], None)
        if pending is None:
            return  # a reply we stopped waiting for (resent)
        body = msgpack.unpackb(frames[3])
        if frames[1] != p.OK:
            self._reply(pending.client, FINAL, [f"error: {body.get('message')}".encode()])
        elif pending.job_id is None:  # SUBMIT: now wait for the job to end
            pending.job_id = body["id"]
            self._wait(pending)
        else:
            self._ended_or_wait(pending, body)

    def _wait(self, pending: _Pending) -> None:
        rid = self._send_front(p.WAIT, {"id": pending.job_id, "timeout": WAIT_S})
        pending.waited_at = time.monotonic()
        self._pending[rid] = pending
        self._by_job[pending.job_id] = rid

    def _ended_or_wait(self, pending: _Pending, job: dict[str, Any]) -> None:
        if job["status"] not in ("succeeded", "failed", "cancelled"):
            self._wait(pending)
            return
        self._by_job.pop(job["id"], None)
        if job["status"] == "succeeded":
            result = job.get("result")
            frames = result if isinstance(result, list) else [msgpack.packb(result)]
            self._reply(pending.client, FINAL, [f if isinstance(f, bytes) else str(f).encode()
                                                for f in frames])
        else:
            error = job.get("error") or {}
            self._reply(pending.client, FINAL, [
                f"error: {error.get('type', job['status'])}: {error.get('message', '')}".encode()])

    def _client_of(self, job_id: str) -> bytes | None:
        rid = self._by_job.get(job_id)
        pending = self._pending.get(rid) if rid is not None else None
        return pending.client if pending is not None else None

    # ------------------------------------------------------------ time

    def _timers(self, now: float) -> None:
        for worker in [w for w in self._workers.values() if now - w.last_heard > self.expiry_s]:
            log.info("mdp.worker_expired", service=worker.service)
            self._drop(worker)
        for rid, pending in [(r, q) for r, q in self._pending.items()
                             if q.job_id is not None and now - q.waited_at > WAIT_RESEND_S]:
            del self._pending[rid]  # its reply was lost (a restarted broker): ask again
            self._wait(pending)
        if now - self._beat_at >= self.interval_s:
            self._beat_at = now
            for worker in self._workers.values():
                self._mdp.send_multipart([worker.identity, b"", WORKER, HEARTBEAT])
                worker.sock.send_multipart([p.WORKER_HEADER, p.HEARTBEAT])


def _text(frames: list[bytes]) -> str:
    return " ".join(f.decode("utf-8", "replace") for f in frames)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": kind, "message": message, "traceback": None}
