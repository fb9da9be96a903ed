"""The broker process: three sockets around the engine, one poll loop.

A loop turn: poll until the next deadline, drain each ROUTER (the workers' first) within a
budget, run timers, dispatch, commit everything in one transaction, then send replies, jobs
and events. Work is per batch, not per message.

No peer can hold the loop: a socket is drained for at most `DRAIN_BUDGET_S` (or `BATCH`
messages, or `BATCH_BYTES`) a turn, and a client that has put `PEER_SHARE` requests into
a turn ends the clients' drain: its next ones wait in ZeroMQ's queue, whose fair queueing
hands out every other client's messages in between. A client with `MAX_IN_FLIGHT` requests
held until their jobs end is answered `ERR busy`; replies to a client that does not read
pile up to `PEER_HWM` in ZeroMQ, then are dropped and counted (`dropped_replies`). What a
message may decode into is bounded too (broker/unpacking.py). The numbers are in
docs/protocol.md ("Limits").
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
import zmq

from zjobs.broker.bridges.majordomo import Majordomo
from zjobs.broker.core import commands
from zjobs.broker.core.engine import (
    Clock,
    Engine,
    EngineConfig,
    SystemClock,
    takeover_grace_s,
)
from zjobs.broker.stores.store import Store
from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.curve import BACKEND, FRONTEND, CurveConfig, apply_server_curve
from zjobs.broker.wire.errors import BUSY, TOO_LARGE, Fenced, StartError, job_error
from zjobs.broker.wire.schema import EventType
from zjobs.broker.wire.settings import default
from zjobs.broker.wire.sockets import recv_frames, send_frames
from zjobs.broker.wire.unpacking import DecodeLimits
from zjobs.broker.wire.version import __version__

log = structlog.get_logger(__name__)

BATCH = 2000
# A turn stops draining a socket past this many bytes, so what the broker holds before its
# commit stays bounded however many large messages (artifact chunks) are queued.
BATCH_BYTES = 64 * 1024 * 1024
# ... and past this long, so that one turn's replies, heartbeats and commit are never far off.
# Under load a turn's own work (commit, dispatch, sends) is a few ms: at 50 ms of draining it
# stays a small part of the turn, as before the budget (at 10 ms, the broker spent 11% more
# CPU per job in `zjobs bench throughput`, committing three times as often).
DRAIN_BUDGET_S = 0.050
PEER_SHARE = 100  # requests of one client in one turn; its next ones wait for the next turn
# Requests of one client held until their jobs end (WAITs, SUBMITs with wait): a request
# that finds this many is answered ERR busy. With the turn's own (PEER_SHARE), no more
# replies than that can be due to one peer in a turn, which stays well under PEER_HWM: a
# client that reads never has one dropped.
MAX_IN_FLIGHT = 500
# Messages queued to (or from) one peer of a ROUTER in ZeroMQ, ZeroMQ's own default. A peer
# that does not read its replies costs at most this many; the next ones are dropped.
PEER_HWM = 1000
STATS_EVERY_S = 5.0

# The broker process's cyclic collector: a busy turn allocates tens of thousands of
# short-lived maps, lists and jobs (none in a cycle), and at CPython's default threshold of
# 700 the collector ran ~250 times in 24,000 jobs of the user's case, ~4 µs of broker CPU a
# job; at this threshold it ran 5 times (bench/PROFILE.md, round seven).
GC_THRESHOLD = (20_000, 20, 100)


def quiet_gc() -> None:
    """Collect the broker process's cycles rarely, and never scan what it imported before
    (`gc.freeze`). For the broker's own process only (`zjobs broker`): a program that embeds
    a `BrokerServer` keeps its own collector settings."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


@dataclass(slots=True)
class BrokerConfig:
    """The broker's settings; each default is the settings table's (broker/wire/settings.py)."""

    frontend: str = default("frontend")
    backend: str = default("backend")
    events: str = default("events")
    data_dir: str = default("data_dir")
    heartbeat_interval_s: float = default("heartbeat_interval")
    heartbeat_liveness: int = default("heartbeat_liveness")
    max_message: int = default("max_message")
    event_window: int = default("event_window")
    queue_window: int = default("queue_window")  # ready jobs per queue and task in memory
    retention_s: float = default("retention")
    purge_interval_s: float = default("purge_interval")
    default_timeout_s: float | None = default("default_timeout")
    attempt_grace_s: float = 10.0
    sync: str = default("sync")
    curve: CurveConfig | None = None
    store: str | None = default("store")  # sqlite:///dir or postgresql://...; None: data_dir
    store_wait: bool = default("store_wait")  # PostgreSQL unreachable at start: wait
    lease_ttl_s: float = default("lease_ttl")  # PostgreSQL: the primary's lease
    mdp: str | None = default("mdp")  # also serve Majordomo there (bridges/majordomo.py)
    busy_poll_s: float = default("busy_poll")  # see _next_ready


def _cpus() -> int:
    """The CPUs this process may run on (all of them where the OS cannot say)."""
    if hasattr(os, "sched_getaffinity"):  # Linux
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _next_ready(poller: zmq.Poller, timeout_s: float, spin_s: float) -> dict[Any, int]:
    """The sockets with messages, once there are some or `timeout_s` has passed.

    For up to `spin_s` first, polled without sleeping. A round trip (`run()`: client, broker,
    worker, broker, client) wakes the broker twice within a millisecond; a process that has
    slept that long on a busy machine runs its next turn at half speed (its caches went to
    the others), and waking it costs more again. Measured on 2 cores: `run()` p50 1.05 ->
    0.68 ms, and no more broker CPU per job (bench/PROFILE.md, round six).
    """
    if not timeout_s:
        return dict(poller.poll(0))
    spin_until = time.perf_counter() + min(spin_s, timeout_s)
    while True:
        ready = dict(poller.poll(0))
        if ready or time.perf_counter() >= spin_until:
            break
    if ready or timeout_s <= spin_s:
        return ready
    return dict(poller.poll(max(int((timeout_s - spin_s) * 1000), 1)))


class BrokerServer:
    """The broker while it serves: its store, engine and bound sockets.

    On PostgreSQL, `broker/standby.py` makes one of these each time the broker becomes
    primary, with a store fenced by its leadership generation.
    """

    def __init__(self, config: BrokerConfig, clock: Clock | None = None,
                 store: Store | None = None, *, takeover: bool = False) -> None:
        """`takeover`: this broker takes over from another one (a standby becoming
        primary), whose workers need longer to find it (`takeover_grace_s`)."""
        self.config = config
        self.clock = clock or SystemClock()
        self.store = store or Store(config.data_dir, sync=config.sync)
        self._lost = False
        engine_config = EngineConfig(
            recent_s=min(30.0, config.retention_s / 2),
            heartbeat_interval_s=config.heartbeat_interval_s,
            heartbeat_liveness=config.heartbeat_liveness,
            default_timeout_s=config.default_timeout_s,
            attempt_grace_s=config.attempt_grace_s,
            event_window=config.event_window,
            queue_window=config.queue_window,
            restart_grace_s=takeover_grace_s(config.heartbeat_interval_s,
                                             config.heartbeat_liveness) if takeover else None,
        )
        self.engine = Engine(self.store, self.clock, engine_config)
        self.limits = DecodeLimits.for_message(config.max_message)
        self._turn_requests: dict[bytes, int] = {}  # requests per client this turn
        self.ctx = zmq.Context()
        self._auth: Any = None
        self.frontend = self._router(config.frontend, FRONTEND)
        self.backend = self._router(config.backend, BACKEND)
        # clients and the API; what a slow subscriber misses it replays by `seq`
        self.publisher = self._socket(zmq.PUB, config.events, FRONTEND, hwm=1_000_000)
        self.mdp = self._majordomo(config.mdp) if config.mdp else None
        self.info = commands.ServerInfo(self.publisher.getsockopt_string(zmq.LAST_ENDPOINT),
                                        __version__, time.monotonic())
        self._stop = threading.Event()
        self._next_stats = self._next_purge = time.monotonic()

    # ------------------------------------------------------------ sockets

    def _socket(self, kind: int, endpoint: str, domain: str, hwm: int) -> zmq.Socket:
        """A bound socket queueing at most `hwm` messages per peer each way; under CURVE it
        admits the keys of ZAP `domain` only."""
        sock = self.ctx.socket(kind)
        sock.linger = 0
        # libzmq drops a peer whose frame passes this hard limit; up to it, an oversized
        # message is received and refused with ERR too_large, so the sender learns why.
        sock.setsockopt(zmq.MAXMSGSIZE, 2 * self.config.max_message + 65536)
        sock.sndhwm = hwm
        sock.rcvhwm = hwm
        if self.config.curve is not None:
            self._auth = apply_server_curve(self.ctx, sock, self.config.curve, self._auth,
                                            domain)
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise StartError(f"cannot listen on {endpoint}: {exc.strerror}; is another broker "
                             "running there? Stop it, or pick other --frontend/--backend/--events"
                             ) from exc
        return sock

    def _router(self, endpoint: str, domain: str) -> zmq.Socket:
        """A ROUTER whose send to a peer that is gone, or whose queue is full (it does not
        read), raises instead of blocking: the reply is dropped and counted."""
        sock = self._socket(zmq.ROUTER, endpoint, domain, hwm=PEER_HWM)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        return sock

    def _majordomo(self, endpoint: str) -> Majordomo:
        """The Majordomo socket and its adapter, served by this loop (broker/majordomo.py)."""
        return Majordomo(self.engine, self._router(endpoint, FRONTEND),
                         max_message=self.config.max_message,
                         heartbeat_interval_s=self.config.heartbeat_interval_s,
                         heartbeat_liveness=self.config.heartbeat_liveness)

    def endpoints(self) -> dict[str, str]:
        return {
            "frontend": self.frontend.getsockopt_string(zmq.LAST_ENDPOINT),
            "backend": self.backend.getsockopt_string(zmq.LAST_ENDPOINT),
            "events": self.info.events_endpoint,
        }

    # ------------------------------------------------------------ loop

    def stop(self) -> None:
        self._stop.set()

    def lose(self) -> None:
        """The lead is gone: stop serving at once, and never commit again."""
        self._lost = True
        self._stop.set()

    @property
    def lost(self) -> bool:
        return self._lost

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.frontend, zmq.POLLIN)
        poller.register(self.backend, zmq.POLLIN)
        if self.mdp is not None:
            poller.register(self.mdp.sock, zmq.POLLIN)
        log.info("broker.started", **self.endpoints(), data_dir=self.config.data_dir,
                 jobs=len(self.engine.active))
        timeout_s = self.engine.tick()
        spin_s = self.config.busy_poll_s if _cpus() > 1 else 0.0
        try:
            while not self._stop.is_set():
                timeout_s = self.turn(_next_ready(poller, timeout_s, spin_s))
        except Fenced as exc:
            log.error("broker.fenced", reason=str(exc))
            self.lose()
        finally:
            self.close()

    def turn(self, ready: dict[Any, int]) -> float:
        """One loop turn; returns the seconds until the next timer is due."""
        if self.backend in ready:  # first: a worker's heartbeat never waits behind clients
            self._drain(self.backend, self._on_worker)
        if self.frontend in ready:
            self._turn_requests.clear()
            self._drain(self.frontend, self._on_client)
        if self.mdp is not None:
            self.mdp.turn(self.mdp.sock in ready)
        self._settle()  # what came in goes on at once: a round trip never waits for timers
        timeout_s = self.engine.tick()
        self._housekeeping()
        self._settle()  # what the timers changed
        due_s = self.engine.flush_due_s()
        if due_s is not None:
            timeout_s = min(timeout_s, due_s)
        return timeout_s if self.mdp is None else min(timeout_s, self.mdp.timeout_s())

    def _settle(self) -> None:
        """Dispatch, send the JOBs, commit, then send the replies and events."""
        self.engine.dispatch()
        self._send_to_workers()  # first: a worker runs its jobs while the turn commits
        if self.engine.flush(may_wait=True):
            self._send_outbox()  # replies and events only once what they tell is stored
        else:
            self._send_to_workers()

    def _drain(self, sock: zmq.Socket, handler: Callable[[list[bytes]], bool]) -> None:
        """Handle the messages `sock` has queued, up to BATCH of them, BATCH_BYTES or
        DRAIN_BUDGET_S, or until `handler` says a peer has had its share of the turn."""
        deadline = time.monotonic() + DRAIN_BUDGET_S
        received = 0
        for _ in range(BATCH):
            frames = recv_frames(sock)  # a frame each call: 1.4 µs against 2.4
            if frames is None:
                return
            if handler(frames):
                return
            received += sum(len(f) for f in frames)
            if received >= BATCH_BYTES or time.monotonic() >= deadline:
                return

    def _too_large(self, frames: list[bytes]) -> bool:
        return sum(len(f) for f in frames) > self.config.max_message

    def _on_client(self, frames: list[bytes]) -> bool:
        """Handle one client message; True once its peer has had its share of the turn."""
        identity, rest = frames[0], frames[1:]
        count = self._turn_requests[identity] = self._turn_requests.get(identity, 0) + 1
        if self.engine.waits.held(identity) >= MAX_IN_FLIGHT:
            self._refuse(identity, rest, BUSY, f"{MAX_IN_FLIGHT} requests of this connection "
                         "are in flight, held until their jobs end (WAITs, SUBMITs with wait); "
                         "wait for their replies before sending more")
        elif self._too_large(rest):
            self._refuse(identity, rest, TOO_LARGE,
                         f"message exceeds the {self.config.max_message} byte limit")
        else:
            self._on_request(identity, rest)
        return count >= PEER_SHARE

    def _refuse(self, identity: bytes, frames: list[bytes], code: str, message: str) -> None:
        self.engine.stats[code] += 1
        rid = frames[2] if len(frames) >= 3 and len(frames[2]) <= p.MAX_REQUEST_ID else b""
        self.engine.outbox.reply(identity, p.encode_error(rid, code, message))

    def _on_request(self, identity: bytes, frames: list[bytes]) -> None:
        engine = self.engine
        try:
            request = p.decode_request(frames, self.limits)
        except p.ProtocolError as exc:
            engine.stats["malformed" if exc.code == "bad_request" else exc.code] += 1
            engine.outbox.reply(identity, p.encode_error(exc.request_id or b"", exc.code,
                                                         exc.reason))
            return
        try:
            commands.handle(engine, identity, request, self.info)
        except Exception:  # a bug must cost one request, never the broker
            log.exception("broker.command_failed", command=request.command.decode())
            engine.outbox.reply(identity, p.encode_error(request.request_id, "internal",
                                                         "internal broker error"))

    def _on_worker(self, frames: list[bytes]) -> bool:
        identity, rest = frames[0], frames[1:]
        engine = self.engine
        if self._too_large(rest):
            self._on_oversized_worker(identity, rest)
            return False
        try:
            msg = p.decode_worker(rest, self.limits)
        except p.ProtocolError as exc:
            if exc.code == TOO_LARGE:
                self._on_undecodable_worker(identity, rest, exc.reason)
                return False
            engine.stats["malformed"] += 1
            log.debug("worker.malformed", reason=exc.reason)
            return False
        try:
            engine.worker_message(identity, msg)
        except Exception:  # a bug must cost one message, never the broker
            log.exception("broker.worker_message_failed", command=msg.command.decode())
        return False

    def _on_oversized_worker(self, identity: bytes, frames: list[bytes]) -> None:
        try:
            msg = p.peek_worker(frames)
        except p.ProtocolError:
            self.engine.stats["too_large"] += 1
            return
        log.warning("worker.message_too_large", command=msg.command.decode(),
                    bytes=sum(len(f) for f in frames), limit=self.config.max_message)
        self.engine.worker_oversized(identity, msg, self.config.max_message)

    def _on_undecodable_worker(self, identity: bytes, frames: list[bytes], reason: str) -> None:
        """A worker message past a decode limit: a RESULT fails its jobs (read by their ids
        alone) with ResultTooLarge, as one over the size limit does; anything else is
        dropped. Counted `too_large` either way."""
        self.engine.stats["too_large"] += 1
        try:
            msg = p.peek_worker(frames)
        except p.ProtocolError:
            return
        log.warning("worker.message_too_large", command=msg.command.decode(), reason=reason)
        if msg.command != p.RESULT:
            return
        error = job_error("ResultTooLarge", f"the result cannot be taken: {reason}")
        bodies = [{**body, "ok": False, "error": error} for body in msg.bodies
                  if isinstance(body.get("job_id"), str) and isinstance(body.get("attempt"), int)]
        if bodies:
            self.engine.worker_message(identity, p.WorkerMessage(p.RESULT, bodies))

    def _housekeeping(self) -> None:
        mono = time.monotonic()
        if mono >= self._next_stats:
            self._next_stats = mono + STATS_EVERY_S
            body = commands.stats(self.engine, {}, self.info)
            self.engine.events.emit(EventType.BROKER_STATS, body)
        if mono >= self._next_purge:
            self._next_purge = mono + self.config.purge_interval_s
            self.purge()

    def purge(self) -> Counter[tuple[str, str]]:
        """Delete a bounded slice of jobs finished before the retention horizon."""
        cutoff = self.clock.wall() - self.config.retention_s
        purged = self.store.purge_finished(cutoff, limit=5000)
        if purged:
            self.engine.forget_purged(purged)
            self._next_purge = time.monotonic()  # more may be due: continue next turn
            log.info("broker.purged", jobs=purged.total())
        return purged

    def _send_to_workers(self) -> None:
        """JOBs (and the rest for workers) go out before the commit, replies and events after.

        A job may then run before the commit of its submit returns: at-least-once allows it,
        since the submit is not acknowledged until then. If the commit refuses the job, the
        worker is told to cancel it (`Engine._evict`); if the broker dies first, the worker
        reports it at its next READY, and the broker, which never stored it, cancels it.
        """
        jobs, others = self.engine.outbox.take_workers()
        if self.mdp is not None:
            self.mdp.take_workers(jobs, others)  # its workers' messages, sent as MDP
        for identity, (compact, batch) in jobs.items():
            bodies = p.encode_jobs(compact, batch, self.config.max_message)
            try:
                send_frames(self.backend, [identity, *p.encode_worker_packed(p.JOB, bodies)])
            except zmq.ZMQError as exc:
                log.warning("worker.unreachable", error=str(exc))
                self.engine.worker_unreachable(identity, batch)
                others.pop(identity, None)
        for identity, batches in others.items():
            self._send_worker(identity, batches)

    def _send_outbox(self) -> None:
        replies = self.engine.outbox.take_replies()
        if self.mdp is not None:
            replies = self.mdp.take_replies(replies)  # the answers to its requests
        for identity, frames in replies:
            try:
                send_frames(self.frontend, [identity, *frames])
            except zmq.ZMQError:
                self.engine.stats["dropped_replies"] += 1
        self._send_to_workers()
        for frames in self.engine.events.take_messages(self.config.max_message):
            try:
                send_frames(self.publisher, frames)
            except zmq.Again:
                self.engine.stats["dropped_events"] += 1

    def _send_worker(self, identity: bytes, batches: dict[bytes, list[bytes]]) -> None:
        for command, bodies in batches.items():
            try:
                send_frames(self.backend, [identity, *p.encode_worker_packed(command, bodies)])
            except zmq.ZMQError as exc:
                log.warning("worker.unreachable", error=str(exc))
                self.engine.worker_unreachable(identity)
                return

    def close(self) -> None:
        if not self._lost:
            try:
                self.engine.flush()
            except Fenced:
                self._lost = True
        for sock in (self.frontend, self.backend, self.publisher):
            sock.close(linger=0)
        if self.mdp is not None:
            self.mdp.close()
        if self._auth is not None:
            self._auth.stop()
        self.ctx.term()
        self.store.close()
        log.info("broker.stopped")
