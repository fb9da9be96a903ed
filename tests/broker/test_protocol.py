"""ZJP/1 encode/decode round trips and refusals (pure, no sockets)."""

from __future__ import annotations

import msgpack
import pytest

from zjobs.broker.wire import protocol as p


def test_request_round_trip() -> None:
    frames = p.encode_request(p.SUBMIT, b"r1", {"task": "add", "args": [1, 2]})
    request = p.decode_request(frames)
    assert (request.command, request.request_id, request.body) == (
        p.SUBMIT, b"r1", {"task": "add", "args": [1, 2]})


def test_reply_round_trip() -> None:
    reply = p.decode_reply(p.encode_error(b"r9", "not_found", "no job x"))
    assert not reply.ok
    assert reply.request_id == b"r9"
    assert reply.body == {"code": "not_found", "message": "no job x"}


def test_worker_batch_round_trip() -> None:
    frames = p.encode_worker(p.RESULT, {"job_id": "a", "attempt": 1, "ok": True, "result": 5},
                             {"job_id": "b", "attempt": 2, "ok": False, "error": {}})
    msg = p.decode_worker(frames)
    assert msg.command == p.RESULT
    assert [b["job_id"] for b in msg.bodies] == ["a", "b"]


def test_bytes_stay_bytes() -> None:
    body = {"data": b"\x00\xff", "text": "é"}
    assert p.unpack(p.pack(body)) == body


@pytest.mark.parametrize("frames, reason", [
    ([], "expected 4 frames"),
    ([b"ZJC2", p.PING, b"r", b""], "bad header"),
    ([p.CLIENT_HEADER, b"NOPE", b"r", b""], "unknown command"),
    ([p.CLIENT_HEADER, p.PING, b"r", b"\xc1"], "malformed msgpack"),
    ([p.CLIENT_HEADER, p.PING, b"r", msgpack.packb([1, 2])], "must be a msgpack map"),
    ([p.CLIENT_HEADER, p.PING, b"x" * 65, b""], "request_id too long"),
])
def test_bad_requests_raise_protocol_error(frames: list[bytes], reason: str) -> None:
    with pytest.raises(p.ProtocolError, match=reason):
        p.decode_request(frames)


def test_bad_request_keeps_request_id_for_the_reply() -> None:
    with pytest.raises(p.ProtocolError) as caught:
        p.decode_request([p.CLIENT_HEADER, b"NOPE", b"rid-7", b""])
    assert caught.value.request_id == b"rid-7"


@pytest.mark.parametrize("frames", [
    [p.WORKER_HEADER],
    [b"ZJW9", p.READY, b""],
    [p.WORKER_HEADER, b"DANCE"],
    [p.WORKER_HEADER, p.RESULT, msgpack.packb({"job_id": 5, "attempt": 1, "ok": True})],
    [p.WORKER_HEADER, p.RESULT, msgpack.packb({"job_id": "a", "attempt": True, "ok": True})],
    [p.WORKER_HEADER, p.READY, msgpack.packb({"name": "w"})],
    [p.WORKER_HEADER, p.LOG, b"\x92\x01"],
])
def test_bad_worker_messages_raise_protocol_error(frames: list[bytes]) -> None:
    with pytest.raises(p.ProtocolError):
        p.decode_worker(frames)


def test_event_round_trip() -> None:
    event = {"type": "job.submitted", "seq": 4, "ts": 1.5, "job_id": "x"}
    assert p.decode_events(p.encode_event(event)) == [event]


def _run(type_: str, seqs: list[int]) -> list[dict]:
    return [{"type": type_, "seq": seq, "ts": 1.5, "job_id": f"j{seq}"} for seq in seqs]


def test_an_event_run_round_trips_in_one_batch_message() -> None:
    events = _run("job.succeeded", [7, 8, 9])
    frames = p.encode_event_run(b"job.succeeded", [p.pack(e) for e in events])
    assert frames[:2] == [b"job.succeeded", p.EVENT_BATCH]  # the topic stays the type
    assert msgpack.unpackb(frames[2]) == events  # a plain msgpack array of the event maps
    assert p.decode_events(frames) == events


def test_a_run_of_one_keeps_the_single_form() -> None:
    [event] = _run("log", [3])
    assert p.encode_event_run(b"log", [p.pack(event)]) == p.encode_event(event)


def _batch(events: object, topic: bytes = b"log", header: bytes = p.EVENT_BATCH) -> list[bytes]:
    return [topic, header, msgpack.packb(events)]


@pytest.mark.parametrize("frames, reason", [
    ([b"log"], "expected 2 or 3 event frames"),
    ([b"log", b"", b"", b""], "expected 2 or 3 event frames"),
    ([b"log", b"\xc1"], "malformed msgpack"),
    ([b"log", msgpack.packb([1])], "must be a msgpack map"),
    ([b"log", msgpack.packb({"type": "log"})], "int seq"),
    ([b"log", msgpack.packb({"type": "log", "seq": True})], "int seq"),
    ([b"log", msgpack.packb({"type": 5, "seq": 1})], "topic as its type"),
    ([b"log", msgpack.packb({"type": "job.failed", "seq": 1})], "topic as its type"),
    ([b"log.", msgpack.packb({"type": "log", "seq": 1})], "topic as its type"),
    ([b"\xff", msgpack.packb({"type": "log", "seq": 1})], "topic as its type"),
    (_batch(_run("log", [1, 2]), topic=b"\xff"), "topic as its type"),
    (_batch(_run("log", [1, 2]), header=b"ZJB2"), "expected ZJB1"),
    ([b"log", p.EVENT_BATCH, b"\xc1"], "malformed msgpack"),
    (_batch([]), "non-empty msgpack array"),
    (_batch({"type": "log", "seq": 1}), "non-empty msgpack array"),
    (_batch([*_run("log", [1]), 5]), "topic as its type"),
    (_batch(_run("log", [1]) + _run("job.failed", [2])), "topic as its type"),
    (_batch(_run("log", [1]), topic=b"log."), "topic as its type"),
    (_batch(_run("log", [1, 3])), "do not follow"),
    (_batch(_run("log", [2, 1])), "do not follow"),
    (_batch(_run("log", [1, 1])), "do not follow"),
    (_batch([{"type": "log", "seq": "1"}, {"type": "log", "seq": 2}]), "int seq"),
])
def test_malformed_event_messages_raise_protocol_error(frames: list[bytes], reason: str) -> None:
    with pytest.raises(p.ProtocolError, match=reason):
        p.decode_events(frames)
