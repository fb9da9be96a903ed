"""Majordomo (MDP/0.2, ZeroMQ RFC 18, as majortomo speaks it) on a socket of the broker loop.

`zjobs broker --mdp ENDPOINT` binds one more ROUTER, which the broker's own loop polls beside
the frontend and the backend (broker/server.py). This adapter turns what Majordomo peers say
into what the engine understands, with no ZJP hop in between, so a Majordomo request gets
everything a zjobs job gets (the durable store, retries, requeue on a lost worker, events,
REST and the dashboard):

- a client's REQUEST for service S is a job in queue S, task S, whose `args` are the
  request's body frames (bytes); the job's result is the list of reply frames. The
  requests read in a turn are one batch (`Engine.submit`), held as a SUBMIT is until it is
  stored (`Engine.hold_submit_reply`: a refused batch answers each of its clients with the
  error), and waited for as `WAIT {ids, each: true, fields: "outcome"}` is
  (`Engine.wait_for`): answered in parts as the jobs end, each part once those ends are
  committed. The engine addresses those replies to `REPLY_TO`, which the server's send path
  hands here (`take_replies`) instead of sending them on the frontend, and each client gets
  its FINAL from the part that has its job: answered once, after the commit;
- a worker's READY for S registers an engine worker of its own, under an identity of the
  adapter's (`ENGINE_PREFIX` + a number; named `mdp-S-<number>`, queue S, task S, one slot
  and a prefetch window), whose JOBs and other messages the server's send path hands here
  (`take_workers`). A JOB becomes a REQUEST to the Majordomo worker, whose client address
  frame is the job id. The window follows the policy of every zjobs worker
  (broker/prefetch.py): about 50 ms of the worker's work, at most `PREFETCH_MAX` jobs, so
  that short requests never wait for a broker turn and long ones are not hoarded;
- a Majordomo worker serves one request after the other, reading the next from its socket
  when it has answered one; once its pace is known the adapter sends it a few requests
  ahead of the one it runs (`AHEAD_S` of its work at that pace, `AHEAD_MAX` at most; none
  while a request runs long), so that it never waits for a broker turn between two. Those
  cannot be taken back: a request that turns out long holds at most that much work behind
  it (the rest of the window goes back to the queue, as below). Its pace is the time its
  answers read in one drain took, shared by them;
- what a Majordomo worker says reaches the engine as that worker's messages: a PARTIAL
  reply is a LOG line (and goes to the client at once), the FINAL reply is the RESULT;
- a job still waiting in the window has not started (it shows `queued`). The adapter sends
  STARTED for a request its worker has held for STALL_S (a faster one's RESULT says it),
  and then closes the window and hands its jobs back (WINDOW), so that they go to an idle
  worker rather than wait behind a long request; the window opens when that request ends;
- a Majordomo worker silent for the heartbeat window is lost (`Engine.worker_unreachable`:
  the request it ran is requeued, its loss counted, as for any lost worker), one that
  sends DISCONNECT has left (requeued, uncounted); the jobs of its window, and those sent
  ahead of the one it ran, go back uncounted either way;
- `mmi.service` answers "200" when a Majordomo worker serves the service, else "404";
  any other `mmi.*` "501".

The workers' messages go to the engine through `_inbox`, applied at the end of the
adapter's part of a turn, before the engine's timers and dispatch: what the adapter makes
while the server sends (a WINDOW when a JOB arrives, a RESULT for a job it cannot run, a
READY again) waits there for the next turn, as a worker's message waits on the backend
socket, and the loop then polls without waiting.

A failed job's FINAL is one frame, `error: <type>: <message>`; a request the broker refuses
(a service name that is no valid queue name, a message over the broker's limit) gets
`error: <code>: <message>`, and only that request. A malformed message is dropped and
counted (`malformed` in STATS); nothing a peer sends ends the broker. What the adapter holds
(requests awaiting a reply, its workers) is memory: after a broker restart the jobs are
still stored and run, and their results are in the store, but a client whose request was in
flight gets no reply (a Majordomo client resends after its timeout), and a Majordomo worker
is told DISCONNECT at its next message, to register again.

The adapter's identities begin with a zero byte, which ZeroMQ reserves for the identities it
makes itself (those are 5 bytes long, these longer): a frontend or backend peer has them only
by setting such an identity on purpose. Replies to `REPLY_TO` are recognised by the object
itself, which the engine passes along, so no frontend client can receive them.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
import zmq

from zjobs.broker.core.engine import Engine
from zjobs.broker.core.outbox import JobTuple
from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.errors import CommandError, job_error
from zjobs.broker.wire.jobs import TERMINAL
from zjobs.broker.wire.prefetch import STALL_S, PrefetchWindow, worth_telling
from zjobs.broker.wire.schema import JobState
from zjobs.broker.wire.settings import default
from zjobs.broker.wire.sockets import recv_frames, send_frames

log = structlog.get_logger(__name__)

CLIENT, WORKER = b"MDPC02", b"MDPW02"
READY, REQUEST, PARTIAL, FINAL, HEARTBEAT, DISCONNECT = (bytes([i]) for i in range(1, 7))
MIN_WORKER_EXPIRY_S = 7.5  # RFC 7's default window (2.5 s x 3): majortomo heartbeats at 2.5 s
# jobs a Majordomo worker's window holds at most (`--prefetch`'s default), about 50 ms of its
# work (broker/prefetch.py)
PREFETCH_MAX = default("prefetch")
AHEAD_S = 0.010            # work sent to a Majordomo worker ahead of the request it runs ...
AHEAD_MAX = PREFETCH_MAX   # ... at the pace its requests have taken, this many at most
WAIT_S = 60.0              # one wait for a turn's requests; those not ended by then: again
DRAIN = 2000               # messages read per turn, so the frontend and backend are not starved
REPLY_TO = b"\x00mdp"          # the identity the engine answers the adapter's requests to
ENGINE_PREFIX = b"\x00mdp-"    # + a number: the engine's identity for a Majordomo worker
_PEER_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError,
                UnicodeDecodeError, p.ProtocolError)


@dataclass(slots=True)
class _Request:
    """A client's request whose job has not been answered yet."""

    client: bytes
    args: list[bytes]


@dataclass(slots=True)
class _Held:
    """A job the engine handed to a Majordomo worker."""

    job_id: str
    attempt: int
    args: list[bytes]
    since: float = 0.0     # when it started there: sent, or the one before it answered
    reported: bool = False  # its STARTED went to the engine


@dataclass(slots=True)
class _Worker:
    """One Majordomo worker, which the engine knows as a worker of its own (`eid`)."""

    identity: bytes  # its routing id on the MDP socket
    eid: bytes       # the engine's identity for it
    name: str
    service: str
    last_heard: float
    window: PrefetchWindow
    # sent to it, not answered, in order: it works on the first, the rest wait at its socket
    sent: deque[_Held] = field(default_factory=deque)
    buffer: deque[_Held] = field(default_factory=deque)  # handed to it, not sent to it yet
    announced: int = 0        # its window, as the engine was last told
    burst: int = 0            # requests it answered in this drain ...
    burst_from: float = 0.0   # ... the first of which started then

    def ahead(self) -> int:
        """How many requests to send beyond the one it works on: none until its pace is
        known, nor while its window is closed (a request runs long)."""
        average_s = self.window.average_s
        if average_s is None or self.window.closed:
            return 0
        return min(AHEAD_MAX, int(AHEAD_S / max(average_s, 1e-6)))


class Majordomo:
    """The MDP socket of a broker and its peers, as the engine's jobs and workers."""

    def __init__(self, engine: Engine, sock: zmq.Socket, *, max_message: int,
                 heartbeat_interval_s: float = default("heartbeat_interval"),
                 heartbeat_liveness: int = default("heartbeat_liveness")) -> None:
        self.engine = engine
        self.sock = sock
        self.max_message = max_message
        self.interval_s = heartbeat_interval_s
        self.expiry_s = max(heartbeat_interval_s * heartbeat_liveness, MIN_WORKER_EXPIRY_S)
        # what its engine workers claim: the engine's own expiry of them (a backstop) is
        # then twice the adapter's, which drops a silent Majordomo worker first
        self._claimed_interval_s = 2 * self.expiry_s / max(heartbeat_liveness, 1)
        self._workers: dict[bytes, _Worker] = {}  # by routing id
        self._by_eid: dict[bytes, _Worker] = {}
        self._requests: dict[str, _Request] = {}  # by job id
        self._submits: dict[bytes, list[str]] = {}  # request id -> the jobs of a held submit
        self._waits: dict[bytes, list[str]] = {}    # request id -> the jobs of a wait
        self._rids = itertools.count(1)
        self._inbox: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._told: dict[bytes, p.WorkerMessage] = {}  # each worker's last message in it
        self._answering: list[_Worker] = []  # workers that answered in the current drain
        self._new: list[tuple[bytes, dict[str, Any]]] = []  # the turn's requests: (client, job)
        self._numbers = itertools.count(1)
        now = engine.clock.mono()
        self._timers_at = now
        self._beat_at = now

    # ------------------------------------------------------------ the broker's turn

    def turn(self, readable: bool) -> None:
        """The adapter's part of a broker turn, before the engine's timers and dispatch: what
        the socket has, the timers when due, then every message for the engine made since
        the last turn."""
        now = self.engine.clock.mono()
        if readable:
            self._drain(now)
        if self._new:
            self._submit_turn()
        if now >= self._timers_at:
            self._timers_at = now + min(self.interval_s / 2, STALL_S)
            self._timers(now)
        inbox, self._inbox = self._inbox, []
        self._told.clear()
        for call, args in inbox:
            try:
                call(*args)
            except Exception:  # a bug must cost one message, never the broker
                log.exception("mdp.engine_call_failed", call=call.__name__)

    def timeout_s(self) -> float:
        """Seconds until the adapter needs a turn: none if messages wait in its inbox."""
        if self._inbox:
            return 0.0
        return max(self._timers_at - self.engine.clock.mono(), 0.0)

    def take_replies(self, replies: list[tuple[bytes, list[bytes]]]
                     ) -> list[tuple[bytes, list[bytes]]]:
        """Answer the clients of the replies addressed to `REPLY_TO` (the object itself: no
        frontend identity is it); the rest, for the frontend."""
        rest = []
        for reply in replies:
            if reply[0] is REPLY_TO:
                self._answer(reply[1])
            else:
                rest.append(reply)
        return rest

    def take_workers(self, jobs: dict[bytes, tuple[bool, list[JobTuple]]],
                     others: dict[bytes, dict[bytes, list[bytes]]]) -> None:
        """Take the JOBs and other messages for the adapter's workers out of the server's
        (what is left goes to the backend), and deliver them as Majordomo messages."""
        now = self.engine.clock.mono()
        for eid in [e for e in jobs if _ours(e)]:
            _, batch = jobs.pop(eid)
            worker = self._by_eid.get(eid)
            if worker is not None:  # else dropped: the engine hears it in the next turn
                self._deliver(worker, batch, now)
        for eid in [e for e in others if _ours(e)]:
            batches = others.pop(eid)
            worker = self._by_eid.get(eid)
            if worker is not None:
                self._from_engine(worker, batches)

    def close(self) -> None:
        self.sock.close(linger=0)

    # ------------------------------------------------------------ reading

    def _drain(self, now: float) -> None:
        """Every message the socket has, up to DRAIN."""
        for _ in range(DRAIN):
            frames = recv_frames(self.sock)
            if frames is None:
                break
            self._handle(frames, now)
        if self._answering:
            self._pace(now)

    def _pace(self, now: float) -> None:
        """The workers that answered in this drain: their pace, then their next requests.
        The time since the first of those requests started is shared by them all (read in
        one drain, each would seem to take no time but the first)."""
        answering, self._answering = self._answering, []
        for worker in answering:
            share = (now - worker.burst_from) / worker.burst
            for _ in range(worker.burst):
                worker.window.finished(share)
            worker.burst = 0
            if self._workers.get(worker.identity) is worker:  # else gone meanwhile
                self._feed(worker, now)

    def _handle(self, frames: list[bytes], now: float) -> None:
        try:
            self._on_message(frames, now)
        except _PEER_ERRORS as exc:
            self.engine.stats["malformed"] += 1
            log.debug("mdp.malformed", error=repr(exc))
        except Exception:  # a bug must cost one message, never the broker
            log.exception("mdp.message_failed")

    def _on_message(self, frames: list[bytes], now: float) -> None:
        if len(frames) < 4 or frames[1] != b"":
            raise ValueError("not an MDP/0.2 message")
        identity, header, command, body = frames[0], frames[2], frames[3], frames[4:]
        if header == CLIENT and command == REQUEST and body:
            self._request(identity, body[0].decode(), body[1:])
        elif header == WORKER:
            self._from_worker(identity, command, body, now)
        else:
            raise ValueError("unknown MDP header or command")

    # ------------------------------------------------------------ clients

    def _request(self, client: bytes, service: str, body: list[bytes]) -> None:
        if service.startswith("mmi."):
            self._send(client, [b"", CLIENT, FINAL, self._mmi(service, body)])
            return
        if _size(body) > self.max_message:
            self.engine.stats["too_large"] += 1
            self._error(client, "too_large",
                        f"the request exceeds the {self.max_message} byte message limit")
            return
        self._new.append((client, {"task": service, "queue": service, "args": body}))

    def _submit_turn(self) -> None:
        new = self._new
        try:
            self._submit_new()
        except Exception:  # a bug must cost the turn's requests, never the broker
            log.exception("mdp.submit_failed", requests=len(new))
            for client, _ in new:
                self._error(client, "internal", "internal broker error")

    def _submit_new(self) -> None:
        """The requests of the turn, as jobs: one batch (all or nothing), or, if the engine
        refuses it, one by one, so that a bad request fails alone."""
        new, self._new = self._new, []
        ids: Sequence[str | None]
        try:
            ids = self.engine.submit([spec for _, spec in new])
        except CommandError:
            ids = [self._submit_one(client, spec) for client, spec in new]
        held = [(client, spec["args"], job_id)
                for (client, spec), job_id in zip(new, ids, strict=True) if job_id is not None]
        if held:
            self._held(held)

    def _submit_one(self, client: bytes, spec: dict[str, Any]) -> str | None:
        try:
            [job_id] = self.engine.submit([spec])
        except CommandError as exc:
            self._error(client, exc.code, exc.message)
            return None
        return job_id

    def _held(self, held: list[tuple[bytes, list[bytes], str]]) -> None:
        """The requests' jobs are the engine's: it says once their submit is stored (or
        refused), and answers one wait in parts as they end, each part once it is stored."""
        ids = []
        for client, args, job_id in held:
            self._requests[job_id] = _Request(client, args)
            ids.append(job_id)
        rid = self._rid()
        self._submits[rid] = ids
        self.engine.hold_submit_reply(REPLY_TO, rid, {}, ids)
        self._wait(ids)

    def _wait(self, ids: list[str]) -> None:
        """Wait for those of `ids` still unanswered (`WAIT {ids, each}`, as the engine holds
        it); those the engine no longer knows (purged) are answered so."""
        engine = self.engine
        ids = [job_id for job_id in ids if job_id in self._requests]
        finished = engine.ended_jobs(ids, True)
        active = engine.active
        for job_id in [i for i in ids if i not in active and i not in finished]:
            self._error(self._requests.pop(job_id).client, "NotFound", "the broker lost the job")
        ids = [job_id for job_id in ids if job_id in self._requests]
        if ids:
            rid = self._rid()
            self._waits[rid] = ids
            engine.wait_for(REPLY_TO, rid, ids, WAIT_S, single=False, finished=finished,
                            each=True, outcome=True)

    def _rid(self) -> bytes:
        return next(self._rids).to_bytes(8, "big")

    def _mmi(self, service: str, body: list[bytes]) -> bytes:
        if service != "mmi.service" or not body:
            return b"501"
        wanted = body[0].decode()
        return b"200" if any(w.service == wanted for w in self._workers.values()) else b"404"

    def _answer(self, frames: list[bytes]) -> None:
        """An engine reply to the adapter (`[header, OK|ERR, request id, body]`): a submit's
        (only a refusal matters: its clients hear why), or a part of a wait's."""
        rid = frames[2]
        submitted = self._submits.pop(rid, None)
        if submitted is not None:
            if frames[1] != p.OK:  # the store refused the batch: its jobs are gone
                self._refused(submitted, p.unpack(frames[3]))
            return
        waited = self._waits.get(rid)
        if waited is None:
            return
        body = p.unpack(frames[3])
        for job in body["jobs"]:
            if job["status"] in TERMINAL:
                request = self._requests.pop(job["id"], None)
                if request is not None:
                    self._send(request.client, [b"", CLIENT, FINAL, *_final_frames(job)])
        if not body["more"]:  # the last part (its deadline): wait again for the rest
            del self._waits[rid]
            if any(job_id in self._requests for job_id in waited):
                self._inbox.append((self._wait, (waited,)))

    def _refused(self, ids: list[str], error: dict[str, Any]) -> None:
        for job_id in ids:
            request = self._requests.pop(job_id, None)
            if request is not None:
                self._error(request.client, error.get("code"), error.get("message"))

    def _error(self, client: bytes, code: Any, message: Any) -> None:
        self._send(client, [b"", CLIENT, FINAL, f"error: {code}: {message}".encode()])

    # ------------------------------------------------------------ workers

    def _from_worker(self, identity: bytes, command: bytes, body: list[bytes],
                     now: float) -> None:
        worker = self._workers.get(identity)
        if command == READY and body:
            if worker is not None:
                self._drop(worker, lost=False)
            self._register(identity, body[0].decode(), now)
            return
        if worker is None:  # not registered here (a restarted broker): it must READY again
            self._send(identity, [b"", WORKER, DISCONNECT])
            return
        worker.last_heard = now
        if command in (PARTIAL, FINAL) and len(body) >= 2:
            self._worker_reply(worker, command, body[0].decode(), body[2:], now)
        elif command == HEARTBEAT:
            self._enqueue(worker, self.engine.worker_message, worker.eid,
                          p.WorkerMessage(p.HEARTBEAT, []))
        elif command == DISCONNECT:
            self._drop(worker, lost=False)
        else:
            raise ValueError("unknown MDP worker command")

    def _register(self, identity: bytes, service: str, now: float) -> None:
        number = next(self._numbers)
        worker = _Worker(identity, ENGINE_PREFIX + str(number).encode(),
                         f"mdp-{service}-{number}", service, now,
                         PrefetchWindow(PREFETCH_MAX, 1, now))
        self._workers[identity] = worker
        self._by_eid[worker.eid] = worker
        self._ready(worker)
        log.info("mdp.worker_ready", service=service, worker=worker.name,
                 identity=identity.hex())

    def _ready(self, worker: _Worker) -> None:
        """Register the worker with the engine (again), with the requests sent to it."""
        worker.announced = worker.window.size()
        body = {"name": worker.name, "queues": [worker.service], "capacity": 1,
                "prefetch": worker.announced, "tasks": [worker.service], "pid": os.getpid(),
                "version": "mdp/0.2", "heartbeat_interval_s": self._claimed_interval_s,
                "running": [{"job_id": job.job_id, "attempt": job.attempt}
                            for job in worker.sent]}
        self._enqueue(worker, self._engine_ready, worker, body)

    def _engine_ready(self, worker: _Worker, body: dict[str, Any]) -> None:
        self.engine.worker_message(worker.eid, p.WorkerMessage(p.READY, [body]))
        if self.engine.workers.get(worker.eid) is None and self._by_eid.get(worker.eid) is worker:
            # refused (a service name no queue may have): the peer hears it at once
            log.info("mdp.worker_refused", service=worker.service, worker=worker.name)
            self._forget(worker)
            self._send(worker.identity, [b"", WORKER, DISCONNECT])

    def _worker_reply(self, worker: _Worker, command: bytes, job_id: str,
                      frames: list[bytes], now: float) -> None:
        job = _find(worker.sent, job_id)
        if job is None:
            return  # an answer to a job it no longer holds (cancelled, requeued): dropped
        if command == PARTIAL:
            self._partial(worker, job, frames)
            return
        if _size(frames) > self.max_message:  # the job fails (ResultTooLarge), as on the backend
            oversized = p.WorkerMessage(p.RESULT, [{"job_id": job_id, "attempt": job.attempt}])
            self._enqueue(worker, self.engine.worker_oversized, worker.eid, oversized,
                          self.max_message)
        else:
            self._tell(worker, p.RESULT, {"job_id": job_id, "attempt": job.attempt,
                                          "ok": True, "result": frames})
        if self._answered(worker, job, now):  # its pace, and its next requests: after the drain
            if not worker.burst:
                worker.burst_from = job.since
                self._answering.append(worker)
            worker.burst += 1

    def _partial(self, worker: _Worker, job: _Held, frames: list[bytes]) -> None:
        """A PARTIAL reply: a log line of the job, and a part of the client's reply."""
        if _size(frames) > self.max_message:
            self.engine.stats["too_large"] += 1
            return
        self._tell(worker, p.LOG, {"job_id": job.job_id, "attempt": job.attempt,
                                   "stream": "stdout", "data": _text(frames)})
        request = self._requests.get(job.job_id)
        if request is not None:
            self._send(request.client, [b"", CLIENT, PARTIAL, *frames])

    def _answered(self, worker: _Worker, job: _Held, now: float) -> bool:
        """`job` leaves the requests sent to the worker; True if it was the one the worker
        worked on (then the next one starts now)."""
        sent = worker.sent
        if sent[0] is not job:
            sent.remove(job)
            return False
        sent.popleft()
        if sent:
            sent[0].since = now
            worker.window.started(now)
        return True

    def _feed(self, worker: _Worker, now: float) -> None:
        """Send the worker the next jobs of its window: one to work on, and as many ahead
        as its pace allows, so that it need not wait for a broker turn between requests.
        Tell the engine its window when it changed enough."""
        size = worker.window.size()
        if worth_telling(worker.announced, size):
            worker.announced = size
            self._tell(worker, p.WINDOW, {"prefetch": size})
        sent, buffer = worker.sent, worker.buffer
        if not buffer or len(sent) > worker.ahead():
            return
        if not sent:
            worker.window.started(now)
        while buffer and len(sent) <= worker.ahead():
            job = buffer.popleft()
            job.since = now
            sent.append(job)
            if not self._send(worker.identity, [b"", WORKER, REQUEST, job.job_id.encode(), b"",
                                                *job.args]):
                sent.pop()  # it never reached the worker: back uncounted, with the rest
                self._drop(worker, lost=True)
                return

    def _deliver(self, worker: _Worker, batch: list[JobTuple], now: float) -> None:
        """The engine's JOBs for the worker: into its window, sent as its pace allows."""
        for job_id, _, _, attempt, _, _, payload in batch:
            request = self._requests.get(job_id)
            args = request.args if request is not None else _args(payload)
            if args is None:
                self._tell(worker, p.RESULT, {
                    "job_id": job_id, "attempt": attempt, "ok": False,
                    "error": job_error("BadRequest", "a Majordomo job's args are its body frames")})
                continue
            worker.buffer.append(_Held(job_id, attempt, args))
        self._feed(worker, now)

    def _from_engine(self, worker: _Worker, batches: dict[bytes, list[bytes]]) -> None:
        """The engine's other messages for the worker (its HEARTBEATs are the adapter's
        business: the Majordomo worker's liveness is watched here)."""
        for command, bodies in batches.items():
            if command == p.CANCEL_JOB:
                now = self.engine.clock.mono()
                for body in bodies:
                    self._cancel(worker, p.unpack(body)["job_id"], now)
                self._feed(worker, now)
            elif command == p.DISCONNECT:  # the engine no longer knows it: register again,
                worker.buffer.clear()      # with the jobs sent to it (the window's went back)
                self._ready(worker)

    def _cancel(self, worker: _Worker, job_id: str, now: float) -> None:
        """A job the engine cancelled (or took back): forgotten here. One the worker has
        (its late answer is dropped) gets a RESULT if the engine saw it start, which gives
        the worker's credit back; one in the window leaves it, no RESULT owed."""
        job = _find(worker.sent, job_id)
        if job is None:
            held = _find(worker.buffer, job_id)
            if held is not None:
                worker.buffer.remove(held)
            return
        if job.reported:
            self._tell(worker, p.RESULT, {"job_id": job_id, "attempt": job.attempt,
                                          "ok": False, "error": job_error("Cancelled", "")})
        self._answered(worker, job, now)

    def _drop(self, worker: _Worker, *, lost: bool) -> None:
        """The Majordomo worker is gone (`lost`: silent or unreachable, else it left): the
        engine requeues the request it ran, and the jobs of its window (never started)."""
        self._forget(worker)
        if worker.sent:
            self._report_started(worker, worker.sent[0])  # it may have run: an attempt
        if lost:
            self._enqueue(worker, self.engine.worker_unreachable, worker.eid)
        else:
            self._tell(worker, p.DISCONNECT, {})
        log.info("mdp.worker_gone", service=worker.service, worker=worker.name, lost=lost)

    def _forget(self, worker: _Worker) -> None:
        self._workers.pop(worker.identity, None)
        self._by_eid.pop(worker.eid, None)

    def _report_started(self, worker: _Worker, job: _Held) -> None:
        if not job.reported:
            job.reported = True
            self._tell(worker, p.STARTED, {"job_id": job.job_id, "attempt": job.attempt})

    def _tell(self, worker: _Worker, command: bytes, body: dict[str, Any]) -> None:
        """A message of the worker's for the engine, applied in the turn's drain phase: in
        the worker's last one if that has the same command (the RESULTs of a drain are then
        one message, whose starts and ends are two runs of events, not two per job)."""
        last = self._told.get(worker.eid)
        if last is not None and last.command == command:
            last.bodies.append(body)
            return
        message = self._told[worker.eid] = p.WorkerMessage(command, [body])
        self._inbox.append((self.engine.worker_message, (worker.eid, message)))

    def _enqueue(self, worker: _Worker, call: Callable[..., Any], *args: Any) -> None:
        """Any other call about the worker, in order: later bodies go in later messages."""
        self._told.pop(worker.eid, None)
        self._inbox.append((call, args))

    # ------------------------------------------------------------ sending

    def _send(self, identity: bytes, frames: list[bytes]) -> bool:
        """Send to a peer; False if it is gone (or not reading), counted for a client."""
        try:
            send_frames(self.sock, [identity, *frames])
        except zmq.ZMQError:
            if frames[1] == CLIENT:
                self.engine.stats["dropped_replies"] += 1
            return False
        return True

    # ------------------------------------------------------------ time

    def _timers(self, now: float) -> None:
        for worker in [w for w in self._workers.values() if now - w.last_heard > self.expiry_s]:
            log.info("mdp.worker_expired", service=worker.service, worker=worker.name)
            self._drop(worker, lost=True)
        for worker in self._workers.values():
            self._keep_time(worker, now)
        if now - self._beat_at >= self.interval_s:
            self._beat_at = now
            for worker in list(self._workers.values()):
                if not self._send(worker.identity, [b"", WORKER, HEARTBEAT]):
                    self._drop(worker, lost=True)

    def _keep_time(self, worker: _Worker, now: float) -> None:
        """A request its worker has held for STALL_S: the engine shows it started, and the
        jobs waiting behind it go back to their queue for an idle worker to take."""
        job = worker.sent[0] if worker.sent else None
        if job is not None and now - job.since >= STALL_S:
            self._report_started(worker, job)
        worker.window.check(now, busy=job is not None)
        if worker.window.closed and (worker.buffer or worker.announced):
            returned = [held.job_id for held in worker.buffer]
            worker.buffer.clear()
            worker.announced = 0
            self._tell(worker, p.WINDOW, {"prefetch": 0, "returned": returned})


def _ours(identity: bytes) -> bool:
    """Whether an engine identity is one of the adapter's workers'."""
    return identity.startswith(ENGINE_PREFIX) and len(identity) > len(ENGINE_PREFIX)


def _find(jobs: deque[_Held], job_id: str) -> _Held | None:
    """The job of that id among `jobs` (a worker's few: the first, as a rule)."""
    for job in jobs:
        if job.job_id == job_id:
            return job
    return None


def _size(frames: list[bytes]) -> int:
    return sum(map(len, frames))


def _args(payload: bytes | bytearray | None) -> list[bytes] | None:
    """A job's body frames from its payload (a job the adapter did not submit: stored before
    a restart, or submitted on the frontend); None unless they are a list of bytes."""
    try:
        args = p.unpack(payload).get("args", []) if payload else []
    except (p.ProtocolError, AttributeError):
        return None
    if isinstance(args, list) and all(isinstance(a, bytes) for a in args):
        return args
    return None


def _final_frames(job: dict[str, Any]) -> list[bytes]:
    """A FINAL's frames for an ended job: its result frames, or one `error: ...` frame."""
    if job["status"] == JobState.SUCCEEDED:
        result = job.get("result")
        frames = result if isinstance(result, list) else [p.pack(result)]
        return [f if isinstance(f, bytes) else str(f).encode() for f in frames]
    error = job.get("error") or {}
    return [f"error: {error.get('type', job['status'])}: {error.get('message', '')}".encode()]


def _text(frames: list[bytes]) -> str:
    return " ".join(f.decode("utf-8", "replace") for f in frames)
