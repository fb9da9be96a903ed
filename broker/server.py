"""The broker process: three sockets around the engine, one poll loop.

A loop turn: poll until the next deadline, drain up to `BATCH` messages from
each ROUTER, run timers, dispatch, commit everything in one transaction,
then send replies, jobs and events. Work is per batch, not per message.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import structlog
import zmq

from . import __version__, commands
from . import protocol as p
from .curve import BACKEND, FRONTEND, CurveConfig, apply_server_curve
from .engine import Clock, Engine, EngineConfig, SystemClock
from .errors import Fenced, StartError
from .sockets import NOBLOCK, send_frames
from .store import Store

log = structlog.get_logger(__name__)

BATCH = 2000
# A turn stops draining a socket past this many bytes, so what the broker holds before its
# commit stays bounded however many large messages (artifact chunks) are queued.
BATCH_BYTES = 64 * 1024 * 1024
STATS_EVERY_S = 5.0


@dataclass(slots=True)
class BrokerConfig:
    frontend: str = "tcp://127.0.0.1:5555"
    backend: str = "tcp://127.0.0.1:5556"
    events: str = "tcp://127.0.0.1:5557"
    data_dir: str = "./.zjobs"
    heartbeat_interval_s: float = 1.0
    heartbeat_liveness: int = 3
    max_message: int = 16 * 1024 * 1024
    event_window: int = 100_000
    queue_window: int = 10_000        # ready jobs per queue and task in memory (engine)
    retention_s: float = 7 * 24 * 3600.0
    purge_interval_s: float = 30.0
    default_timeout_s: float | None = None
    attempt_grace_s: float = 10.0
    sync: str = "NORMAL"
    curve: CurveConfig | None = None
    store: str | None = None          # sqlite:///dir or postgresql://...; None: data_dir
    store_wait: bool = False          # PostgreSQL unreachable at start: wait instead of exit
    lease_ttl_s: float = 2.0          # PostgreSQL: the primary's lease (broker/lease.py)


class BrokerServer:
    """The broker while it serves: its store, engine and bound sockets.

    On PostgreSQL, `broker/standby.py` makes one of these each time the broker becomes
    primary, with a store fenced by its leadership generation.
    """

    def __init__(self, config: BrokerConfig, clock: Clock | None = None,
                 store: Store | None = None) -> None:
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
        )
        self.engine = Engine(self.store, self.clock, engine_config)
        self.ctx = zmq.Context()
        self._auth: Any = None
        self.frontend = self._router(config.frontend, FRONTEND)
        self.backend = self._router(config.backend, BACKEND)
        self.publisher = self._socket(zmq.PUB, config.events, FRONTEND)  # clients and the API
        self.info = commands.ServerInfo(self.publisher.getsockopt_string(zmq.LAST_ENDPOINT),
                                        __version__, time.monotonic())
        self._stop = threading.Event()
        self._next_stats = self._next_purge = time.monotonic()

    # ------------------------------------------------------------ sockets

    def _socket(self, kind: int, endpoint: str, domain: str) -> zmq.Socket:
        """A bound socket; under CURVE it admits the keys of ZAP `domain` only."""
        sock = self.ctx.socket(kind)
        sock.linger = 0
        # libzmq drops a peer whose frame passes this hard limit; up to it, an oversized
        # message is received and refused with ERR too_large, so the sender learns why.
        sock.setsockopt(zmq.MAXMSGSIZE, 2 * self.config.max_message + 65536)
        sock.sndhwm = 1_000_000
        sock.rcvhwm = 1_000_000
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
        sock = self._socket(zmq.ROUTER, endpoint, domain)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        return sock

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
        log.info("broker.started", **self.endpoints(), data_dir=self.config.data_dir,
                 jobs=len(self.engine.active))
        timeout_s = self.engine.tick()
        try:
            while not self._stop.is_set():
                ready = dict(poller.poll(max(int(timeout_s * 1000), 1) if timeout_s else 0))
                timeout_s = self.turn(ready)
        except Fenced as exc:
            log.error("broker.fenced", reason=str(exc))
            self.lose()
        finally:
            self.close()

    def turn(self, ready: dict[Any, int]) -> float:
        """One loop turn; returns the seconds until the next timer is due."""
        if self.frontend in ready:
            self._drain(self.frontend, self._on_client)
        if self.backend in ready:
            self._drain(self.backend, self._on_worker)
        timeout_s = self.engine.tick()
        self._housekeeping()
        self.engine.dispatch()
        self._send_to_workers()  # first: a worker runs its jobs while the turn commits
        self.engine.flush()
        self._send_outbox()
        return timeout_s

    def _drain(self, sock: zmq.Socket, handler: Any) -> None:
        received = 0
        for _ in range(BATCH):
            try:
                frames = sock.recv_multipart(NOBLOCK)
            except zmq.Again:
                return
            handler(frames)
            received += sum(len(f) for f in frames)
            if received >= BATCH_BYTES:
                return

    def _too_large(self, frames: list[bytes]) -> bool:
        return sum(len(f) for f in frames) > self.config.max_message

    def _on_client(self, frames: list[bytes]) -> None:
        identity, rest = frames[0], frames[1:]
        engine = self.engine
        if self._too_large(rest):
            engine.stats["too_large"] += 1
            rid = rest[2] if len(rest) >= 3 and len(rest[2]) <= p.MAX_REQUEST_ID else b""
            engine.outbox.reply(identity, p.encode_error(
                rid, "too_large", f"message exceeds the {self.config.max_message} byte limit"))
            return
        try:
            request = p.decode_request(rest)
        except p.ProtocolError as exc:
            engine.stats["malformed"] += 1
            engine.outbox.reply(identity, p.encode_error(exc.request_id or b"", "bad_request",
                                                         exc.reason))
            return
        try:
            commands.handle(engine, identity, request, self.info)
        except Exception:  # a bug must cost one request, never the broker
            log.exception("broker.command_failed", command=request.command.decode())
            engine.outbox.reply(identity, p.encode_error(request.request_id, "internal",
                                                         "internal broker error"))

    def _on_worker(self, frames: list[bytes]) -> None:
        identity, rest = frames[0], frames[1:]
        engine = self.engine
        if self._too_large(rest):
            self._on_oversized_worker(identity, rest)
            return
        try:
            msg = p.decode_worker(rest)
        except p.ProtocolError as exc:
            engine.stats["malformed"] += 1
            log.debug("worker.malformed", reason=exc.reason)
            return
        try:
            engine.worker_message(identity, msg)
        except Exception:  # a bug must cost one message, never the broker
            log.exception("broker.worker_message_failed", command=msg.command.decode())

    def _on_oversized_worker(self, identity: bytes, frames: list[bytes]) -> None:
        try:
            msg = p.peek_worker(frames)
        except p.ProtocolError:
            self.engine.stats["too_large"] += 1
            return
        log.warning("worker.message_too_large", command=msg.command.decode(),
                    bytes=sum(len(f) for f in frames), limit=self.config.max_message)
        self.engine.worker_oversized(identity, msg, self.config.max_message)

    def _housekeeping(self) -> None:
        mono = time.monotonic()
        if mono >= self._next_stats:
            self._next_stats = mono + STATS_EVERY_S
            body = commands.stats(self.engine, {}, self.info)
            self.engine.events.emit("broker.stats", body)
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
        for identity, frames in replies:
            try:
                send_frames(self.frontend, [identity, *frames])
            except zmq.ZMQError:
                self.engine.stats["dropped_replies"] += 1
        self._send_to_workers()
        for topic, body in self.engine.events.take_pending():
            try:
                send_frames(self.publisher, [topic, body])
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
        if self._auth is not None:
            self._auth.stop()
        self.ctx.term()
        self.store.close()
        log.info("broker.stopped")
