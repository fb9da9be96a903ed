"""The broker loop's wait for its next turn (`_next_ready`), with and without the busy poll.

Whichever way it waits, it returns the sockets that have a message as soon as one has,
and nothing once the timers' deadline has passed; a message that comes in the middle of a
long blocking wait is not kept waiting for the deadline.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import pytest
import zmq

from zjobs.broker.server import _next_ready

_names = itertools.count()


@pytest.fixture
def pair() -> Iterator[tuple[zmq.Poller, zmq.Socket, zmq.Socket]]:
    ctx = zmq.Context()
    endpoint = f"inproc://busy-poll-{next(_names)}"
    inbox, sender = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    inbox.bind(endpoint)
    sender.connect(endpoint)
    poller = zmq.Poller()
    poller.register(inbox, zmq.POLLIN)
    try:
        yield poller, inbox, sender
    finally:
        inbox.close(linger=0)
        sender.close(linger=0)
        ctx.term()


@pytest.mark.parametrize("spin_s", [0.0, 0.0003, 0.005])
def test_a_waiting_message_is_ready_at_once(pair, spin_s: float) -> None:
    poller, inbox, sender = pair
    sender.send(b"x")
    deadline = time.monotonic() + 5
    while not inbox.poll(0) and time.monotonic() < deadline:
        pass  # inproc: queued once sent, but the pipe may take a moment to attach
    assert _next_ready(poller, 30.0, spin_s) == {inbox: zmq.POLLIN}


@pytest.mark.parametrize("spin_s", [0.0, 0.0003, 0.005])
def test_with_no_message_it_returns_nothing_once_the_deadline_has_passed(pair,
                                                                          spin_s: float) -> None:
    poller, inbox, _ = pair
    started = time.monotonic()
    assert _next_ready(poller, 0.05, spin_s) == {}
    assert time.monotonic() - started >= 0.045  # never before the timers are due


@pytest.mark.parametrize("spin_s", [0.0, 0.0003])
def test_a_message_during_a_long_wait_ends_it(pair, spin_s: float) -> None:
    poller, inbox, sender = pair
    sent = threading.Event()

    def send_later() -> None:
        sent.wait(5)
        sender.send(b"x")

    thread = threading.Thread(target=send_later)
    thread.start()
    try:
        started = time.monotonic()
        sent.set()
        assert _next_ready(poller, 30.0, spin_s) == {inbox: zmq.POLLIN}
        assert time.monotonic() - started < 10  # woken by the message, not the 30 s deadline
    finally:
        thread.join(5)


def test_a_zero_timeout_only_looks(pair) -> None:
    poller, _, _ = pair
    started = time.monotonic()
    assert _next_ready(poller, 0.0, 0.5) == {}
    assert time.monotonic() - started < 0.25  # no spin when a timer is already due
