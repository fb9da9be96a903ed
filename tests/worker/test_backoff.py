"""Reconnect delays with a primary and its standbys: the next endpoint at once after the one
that last answered, a growing wait only after a full round of silence."""

from __future__ import annotations

from zjobs.worker.peer import Backoff


def test_after_an_answer_the_next_endpoint_is_tried_at_once_every_time() -> None:
    backoff = Backoff(1.0, 5.0)
    for _ in range(4):  # four failovers, each broker answering in between
        assert backoff.next_delay(endpoints=2) == 0.0
        backoff.reset()  # the next broker answered


def test_a_full_round_without_an_answer_waits_and_the_wait_grows() -> None:
    backoff = Backoff(1.0, 5.0)
    assert backoff.next_delay(endpoints=2) == 0.0   # the other endpoint, at once
    first = backoff.next_delay(endpoints=2)          # both silent: wait
    assert 0.5 <= first <= 1.0
    assert backoff.next_delay(endpoints=2) == 0.0
    assert 1.0 <= backoff.next_delay(endpoints=2) <= 2.0
    backoff.reset()
    assert backoff.next_delay(endpoints=2) == 0.0


def test_one_endpoint_always_waits() -> None:
    backoff = Backoff(1.0, 5.0)
    assert 0.5 <= backoff.next_delay() <= 1.0
    assert 1.0 <= backoff.next_delay() <= 2.0
