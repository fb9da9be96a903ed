"""Property tests: any frames decode to a valid message or raise ProtocolError, nothing else."""

from __future__ import annotations

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from zjobs.broker.wire import protocol as p

frame = st.binary(max_size=200)
headers = st.sampled_from([p.CLIENT_HEADER, p.WORKER_HEADER, b"", b"ZJC", b"ZJX1"])
commands = st.sampled_from(sorted(p.CLIENT_COMMANDS) + [p.READY, p.RESULT, p.LOG, p.HEARTBEAT,
                                                        p.JOB, b"", b"\xff"])
msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
packed = msgpack_values.map(lambda v: msgpack.packb(v, use_bin_type=True))
body = frame | packed
structured = st.tuples(headers, commands, frame, body).map(list)
frames = st.lists(frame | packed, max_size=6) | structured
worker_frames = st.tuples(headers, commands, st.lists(body, max_size=3)).map(
    lambda t: [t[0], t[1], *t[2]])

DECODERS = (p.decode_request, p.decode_worker, p.decode_broker, p.decode_reply, p.decode_events)


@settings(max_examples=400, deadline=None)
@given(frames)
def test_any_frames_decode_or_raise_protocol_error(fs: list[bytes]) -> None:
    for decode in DECODERS:
        try:
            decode(fs)
        except p.ProtocolError:
            pass


@settings(max_examples=400, deadline=None)
@given(worker_frames)
def test_worker_frames_decode_to_checked_bodies(fs: list[bytes]) -> None:
    try:
        msg = p.decode_worker(fs)
    except p.ProtocolError:
        return
    assert msg.command in (p.READY, p.RESULT, p.LOG, p.HEARTBEAT, p.STARTED, p.PROGRESS,
                           p.ARTIFACT_CHUNK, p.DISCONNECT)
    assert all(isinstance(b, dict) for b in msg.bodies)


@settings(max_examples=400, deadline=None)
@given(worker_frames)
def test_oversized_worker_frames_peek_or_raise_protocol_error(fs: list[bytes]) -> None:
    try:
        msg = p.peek_worker(fs)
    except p.ProtocolError:
        return
    assert all(set(b) <= {"job_id", "attempt"} for b in msg.bodies)


@settings(max_examples=300, deadline=None)
@given(st.tuples(headers, commands, frame, body).map(list))
def test_client_requests_are_valid_or_refused(fs: list[bytes]) -> None:
    try:
        request = p.decode_request(fs)
    except p.ProtocolError:
        return
    assert request.command in p.CLIENT_COMMANDS
    assert isinstance(request.body, dict)
    assert len(request.request_id) <= p.MAX_REQUEST_ID


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=10), msgpack_values, max_size=5), st.binary(max_size=64))
def test_request_round_trip(body: dict, rid: bytes) -> None:
    request = p.decode_request(p.encode_request(p.SUBMIT, rid, body))
    assert request.request_id == rid
    assert msgpack.packb(request.body) == msgpack.packb(body)


event_types = st.sampled_from(["log", "job.started", "worker.joined", "é"])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**62), event_types,
       st.lists(st.dictionaries(st.text(max_size=8), msgpack_values, max_size=4),
                min_size=1, max_size=6))
def test_event_runs_round_trip(first: int, type_: str, extras: list[dict]) -> None:
    events = [{**extra, "seq": first + i, "type": type_} for i, extra in enumerate(extras)]
    frames = p.encode_event_run(type_.encode(), [p.pack(e) for e in events])
    assert len(frames) == (2 if len(events) == 1 else 3)
    assert p.pack(p.decode_events(frames)) == p.pack(events)  # packed: NaN equals itself


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([b"log", b"job.started", b"", b"\xff"]),
       st.sampled_from([p.EVENT_BATCH, b"ZJB2", b""]), body)
def test_any_batch_decodes_to_a_checked_run_or_raises_protocol_error(
        topic: bytes, header: bytes, data: bytes) -> None:
    try:
        events = p.decode_events([topic, header, data])
    except p.ProtocolError:
        return
    assert events and all(e["type"] == topic.decode() for e in events)
    assert [e["seq"] for e in events] == list(range(events[0]["seq"],
                                                    events[0]["seq"] + len(events)))
