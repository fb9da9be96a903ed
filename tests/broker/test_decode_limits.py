"""What a client request or a worker message may decode into (broker/unpacking.py)."""

from __future__ import annotations

import time

import msgpack
import pytest

from zjobs.api.schemas import JobBatchIn
from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.unpacking import DecodeLimits

MIB = 1024 * 1024
LIMITS = DecodeLimits.for_message(16 * MIB)


def request(body: bytes) -> list[bytes]:
    return [p.CLIENT_HEADER, p.SUBMIT, b"rid", body]


def refused(frames: list[bytes], decode=p.decode_request) -> p.ProtocolError:  # noqa: ANN001
    started = time.monotonic()
    with pytest.raises(p.ProtocolError) as caught:
        decode(frames, LIMITS)
    assert time.monotonic() - started < 5.0  # unbounded, these took 7 s and more
    return caught.value


def test_the_limits_follow_the_message_limit() -> None:
    assert LIMITS.max_values == 2 * MIB and LIMITS.max_bytes == 16 * MIB
    assert DecodeLimits.for_message(1024).max_values == 65_536  # ordinary requests still fit


@pytest.mark.parametrize("empty", [b"\x90", b"\x80"], ids=["arrays", "maps"])
def test_an_array_of_16_million_empty_containers_is_refused_before_it_is_built(
        empty: bytes) -> None:
    count = 16 * MIB - 64
    error = refused(request(b"\xdd" + count.to_bytes(4, "big") + empty * count))
    assert (error.code, error.request_id) == ("too_large", b"rid")
    assert f"array of {count} items" in error.reason and str(LIMITS.max_values) in error.reason


def test_nested_containers_are_counted_across_the_whole_body() -> None:
    inner = 1_000_000
    args = b"\xdc\x00\x10" + (b"\xdd" + inner.to_bytes(4, "big") + b"\x90" * inner) * 16
    body = b"\x82" + msgpack.packb("task") + msgpack.packb("noop") + msgpack.packb("args")
    error = refused(request(body + args))
    assert error.code == "too_large"
    assert f"more than {LIMITS.max_values} values" in error.reason


def test_the_bodies_of_one_worker_message_share_one_budget() -> None:
    # 16 bodies of 100,000 empty arrays: each alone is within the limit, together not
    body = msgpack.packb({"job_id": "j", "attempt": 1, "stream": "stdout", "data": "x"})
    bomb = b"\x85" + body[1:] + msgpack.packb("extra") + b"\xdd" + (10**5).to_bytes(4, "big") \
        + b"\x90" * 10**5
    frames = [p.WORKER_HEADER, p.LOG, *[bomb] * 16]
    assert p.decode_worker(frames[:3], LIMITS).command == p.LOG
    error = refused(frames, p.decode_worker)
    assert error.code == "too_large"


def test_a_100000_job_rest_batch_decodes_within_the_limits() -> None:
    batch = JobBatchIn.model_validate({"jobs": [{"task": "noop", "args": [i]}
                                                for i in range(100_000)]})
    jobs = [job.to_wire() for job in batch.jobs]
    decoded = p.decode_request(p.encode_request(p.SUBMIT, b"rid", {"jobs": jobs}), LIMITS)
    assert decoded.body["jobs"] == jobs


@pytest.mark.parametrize(("value", "words"), [
    (msgpack.ExtType(1, b"x"), "msgpack ext types are not part of ZJP/1"),
    ("s" * 2048, "a str of 2048 bytes exceeds the 1024 byte message limit"),
    (b"b" * 2048, "a bin of 2048 bytes exceeds the 1024 byte message limit"),
])
def test_ext_types_and_strings_past_the_message_limit_are_refused(value: object,
                                                                  words: str) -> None:
    limits = DecodeLimits.for_message(1024)
    with pytest.raises(p.ProtocolError) as caught:
        p.decode_request(request(msgpack.packb({"task": "noop", "args": [value]})), limits)
    assert (caught.value.code, caught.value.reason) == ("too_large", words)


def test_malformed_bodies_are_still_bad_requests() -> None:
    for body in (b"\xc1", b"\x92\x01", msgpack.packb([1, 2])):
        with pytest.raises(p.ProtocolError) as caught:
            p.decode_request(request(body), LIMITS)
        assert caught.value.code == "bad_request"


def test_peeking_an_oversized_worker_message_reads_only_its_first_keys() -> None:
    # a map of a million keys: walked one key at a time, it held the broker for seconds
    keys = b"".join(msgpack.packb(f"k{i}") + b"\xc0" for i in range(10**6))
    body = b"\xdf" + (10**6 + 2).to_bytes(4, "big") + keys + msgpack.packb("job_id") \
        + msgpack.packb("j") + msgpack.packb("attempt") + msgpack.packb(1)
    started = time.monotonic()
    msg = p.peek_worker([p.WORKER_HEADER, p.RESULT, body])
    assert time.monotonic() - started < 1.0
    assert msg.bodies == [{}]
    first = msgpack.packb({"job_id": "j", "attempt": 2, "result": list(range(10_000))})
    assert p.peek_worker([p.WORKER_HEADER, p.RESULT, first]).bodies == [
        {"job_id": "j", "attempt": 2}]
