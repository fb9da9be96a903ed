"""The client's reading of its socket monitor (pure: monitor frames in, state out)."""

from __future__ import annotations

import struct

import zmq

from zjobs.broker.client.link import Link


def _event(kind: int, value: int = 0) -> list[bytes]:
    return [struct.pack("=Hi", kind, value), b"tcp://127.0.0.1:1"]


def test_refusal_names_the_endpoint_and_a_success_clears_it() -> None:
    link = Link("tcp://127.0.0.1:1")
    assert not link.note(_event(zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400))
    assert link.refused == ("CURVE handshake refused by tcp://127.0.0.1:1: "
                            "this key is not allowed on the frontend")
    link.note(_event(zmq.EVENT_HANDSHAKE_SUCCEEDED))
    assert link.refused is None


def test_only_a_handshake_after_a_disconnect_is_a_reconnect() -> None:
    link = Link("e")
    assert not link.note(_event(zmq.EVENT_HANDSHAKE_SUCCEEDED))
    assert not link.note(_event(zmq.EVENT_DISCONNECTED))
    assert link.note(_event(zmq.EVENT_HANDSHAKE_SUCCEEDED))
    assert not link.note(_event(zmq.EVENT_HANDSHAKE_SUCCEEDED))
    assert not link.note([b"junk"])


def test_without_curve_a_broken_handshake_is_a_broker_gone_not_a_refusal() -> None:
    link = Link("tcp://127.0.0.1:1", curve=False)
    assert not link.note([struct.pack("=Hi", zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, 0), b"x"])
    assert link.refused is None
    link.note([struct.pack("=Hi", zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, 0), b"x"])
    assert "mechanisms differ" in link.refused  # a plain client of a CURVE broker: refused


def test_without_curve_connections_that_keep_ending_before_the_handshake_are_a_refusal() -> None:
    """libzmq may report a plain client's mechanism mismatch as a closed connection only
    (which side reads first decides): three in a row with no handshake between refuse."""
    link = Link("tcp://127.0.0.1:1", curve=False)
    link.note(_event(zmq.EVENT_DISCONNECTED))
    link.note(_event(zmq.EVENT_HANDSHAKE_SUCCEEDED))  # a broker that came back: counted anew
    link.note(_event(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL))
    link.note(_event(zmq.EVENT_DISCONNECTED))
    assert link.refused is None
    link.note(_event(zmq.EVENT_DISCONNECTED))
    assert link.refused is not None and "mechanisms differ" in link.refused
