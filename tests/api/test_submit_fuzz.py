"""Generated hostile job bodies, posted over real HTTP and sent as raw SUBMITs over ZeroMQ.

Extreme numbers (beyond 64 bits, NaN, infinities), huge strings, deep
nesting, invalid UTF-8 and wrong types, in any field. Whatever arrives: never
a 5xx, the broker still answers PING, and a refusal (4xx or ERR) creates
nothing. One broker and one API serve every example.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cluster import Cluster
from zjobs import Client
from zjobs.broker.wire import protocol as p

from .server import start_api

DEEP = "\x00deep\x00"  # markers replaced once encoded: the encoders cannot make these
BAD_UTF8 = "\x00bad-utf8\x00"
HTTP_DEPTH = 5000
ZMQ_DEPTH = 300  # msgpack will not pack much deeper; the broker must still refuse it

FIELDS = ["task", "args", "kwargs", "queue", "priority", "timeout_s", "max_retries",
          "retry_backoff_s", "run_at", "idempotency_key", "id", "kind", "spec", "function",
          "jobs", "colour"]
EXTREMES = [2**31, -(2**31) - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 10**400,
            1e20, 1e308, -0.0, 253402300800, "9999-12-31T23:59:59Z", "0001-01-01", "x" * 300,
            "y" * 20_000, "", DEEP, BAD_UTF8]
scalars = (st.none() | st.booleans() | st.integers() | st.floats()
           | st.text(max_size=12) | st.sampled_from(EXTREMES))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)
jobs = st.dictionaries(st.sampled_from(FIELDS), values, max_size=5).map(
    lambda fields: {"task": "noop", "queue": "fuzz", **fields})
bodies = jobs | st.builds(lambda items: {"jobs": items}, st.lists(jobs, max_size=3)) | values


def http_bytes(body: Any) -> bytes:
    text = json.dumps(body, allow_nan=True)  # NaN / Infinity literals, ints of any size
    text = text.replace(json.dumps(DEEP), "[" * HTTP_DEPTH + "]" * HTTP_DEPTH)
    return text.encode().replace(json.dumps(BAD_UTF8).encode(), b'"\xff\xfe"')


def zmq_bytes(body: Any) -> bytes | None:
    """The body as msgpack, or None where msgpack cannot hold it (ints beyond 64 bits)."""
    deep: list = []
    for _ in range(ZMQ_DEPTH):
        deep = [deep]
    try:
        packed = msgpack.packb(_replace(body, DEEP, deep))
    except (OverflowError, ValueError):
        return None
    bad = msgpack.packb(BAD_UTF8)
    return packed.replace(bad, bytes([0xA0 | 2]) + b"\xff\xfe")  # a 2-byte str, not UTF-8


def _replace(value: Any, marker: str, by: Any) -> Any:
    if value == marker:
        return by
    if isinstance(value, list):
        return [_replace(v, marker, by) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, marker, by) for k, v in value.items()}
    return value


class Fuzz:
    def __init__(self, cluster: Cluster, http: httpx.Client) -> None:
        self.http = http
        self.client: Client = cluster.client()
        self.dealer = zmq.Context.instance().socket(zmq.DEALER)
        self.dealer.linger = 0
        self.dealer.connect(cluster.frontend)

    def total(self) -> int:
        return sum(self.client.stats()["jobs"].values())

    def submit_raw(self, packed: bytes) -> p.ClientReply:
        self.dealer.send_multipart([p.CLIENT_HEADER, p.SUBMIT, b"fuzz", packed])
        assert self.dealer.poll(10_000), "the broker did not answer a raw SUBMIT"
        return p.decode_reply(self.dealer.recv_multipart())


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    cluster = Cluster(tmp_path_factory.mktemp("fuzz"))
    try:
        cluster.start_broker()
        server = start_api(cluster)
        with server.client() as http:
            fuzz = Fuzz(cluster, http)
            yield fuzz
            fuzz.dealer.close(linger=0)
        assert cluster.broker.poll() is None, "the broker died"
    finally:
        cluster.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.data_too_large])
@given(bodies)
def test_hostile_bodies_never_5xx_and_refusals_create_nothing(fuzz: Fuzz, body: Any) -> None:
    before = fuzz.total()
    response = fuzz.http.post("/jobs", content=http_bytes(body),
                              headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"code", "message"} and "\n" not in error["message"]
        assert fuzz.total() == before, "a refused body created a job"
    packed = zmq_bytes(body)
    if packed is not None:
        before = fuzz.total()
        reply = fuzz.submit_raw(packed)
        if not reply.ok:
            assert reply.body["code"] != "internal", reply.body
            assert "\n" not in reply.body["message"], reply.body
            assert fuzz.total() == before, "a refused SUBMIT created a job"
    assert fuzz.client.ping(timeout=5)["pong"]
    assert fuzz.http.get("/jobs", params={"queue": "fuzz", "limit": 5}).status_code == 200

