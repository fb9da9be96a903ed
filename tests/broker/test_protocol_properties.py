"""Property tests: any frames decode to a valid message or raise ProtocolError, nothing else."""

from __future__ import annotations

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from broker import protocol as p

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
