"""Hostile but well-framed messages never raise out of the engine or the command handlers."""

from __future__ import annotations

import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.broker.test_engine import FakeClock
from zjobs.broker.core import commands
from zjobs.broker.core.engine import Engine, EngineConfig
from zjobs.broker.stores.store import Store
from zjobs.broker.wire import protocol as p

values = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) \
    | st.text(max_size=5) | st.binary(max_size=5) | st.lists(st.integers(-100, 100), max_size=3) \
    | st.dictionaries(st.text(max_size=3), st.integers(-100, 100), max_size=2)
keys = st.sampled_from(["job_id", "attempt", "ok", "result", "error", "artifacts", "stream",
                        "data", "fraction", "message", "retry_in_s", "name", "queues",
                        "capacity", "drain", "id", "ids", "jobs", "task", "since", "limit",
                        "types", "timeout", "status", "cursor", "priority", "run_at",
                        "idempotency_key", "kind", "spec"])
bodies = st.dictionaries(keys, values, max_size=6)
worker_commands = st.sampled_from([p.READY, p.HEARTBEAT, p.STARTED, p.LOG, p.PROGRESS, p.RESULT,
                                   p.DISCONNECT])
client_commands = st.sampled_from(sorted(p.CLIENT_COMMANDS))


def _engine() -> Engine:
    engine = Engine(Store(tempfile.mkdtemp()), FakeClock(), EngineConfig())
    engine.submit([{"task": "t"} for _ in range(3)])
    engine.worker_message(b"w", p.WorkerMessage(p.READY, [{"name": "w", "queues": ["default"],
                                                           "capacity": 2}]))
    engine.dispatch()
    return engine


ENGINE = _engine()
INFO = commands.ServerInfo("tcp://x", "0", 0.0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worker_commands, st.lists(bodies, max_size=3), st.sampled_from([b"w", b"stranger"]))
def test_worker_messages_never_raise(command: bytes, raw: list[dict], identity: bytes) -> None:
    frames = [p.WORKER_HEADER, command, *(p.pack(b) for b in raw)]
    try:
        msg = p.decode_worker(frames)
    except p.ProtocolError:
        return
    ENGINE.worker_message(identity, msg)
    ENGINE.tick()
    ENGINE.dispatch()
    ENGINE.flush()
    ENGINE.outbox.take()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(client_commands, bodies)
def test_client_commands_answer_ok_or_err(command: bytes, body: dict) -> None:
    request = p.decode_request(p.encode_request(command, b"r", body))
    commands.handle(ENGINE, b"c", request, INFO)
    ENGINE.tick()
    ENGINE.flush()
    replies, _ = ENGINE.outbox.take()
    if command != p.WAIT:
        assert replies and all(p.decode_reply(frames).request_id == b"r"
                               for _, frames in replies)
