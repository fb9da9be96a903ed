"""The peer outbox keeps the results it sent for a while, to send them again after a READY."""

from __future__ import annotations

import time

from zjobs.broker.wire import protocol as p
from zjobs.worker import peer
from zjobs.worker.peer import PeerOutbox


def _results(outbox: PeerOutbox) -> list[dict]:
    return [p.unpack(body) for frames in outbox.take(()) for body in frames[2:]
            if frames[1] == p.RESULT]


def _result(job_id: str) -> bytes:
    return p.pack({"job_id": job_id, "attempt": 1, "ok": True, "result": None})


def test_results_sent_lately_are_sent_again_once_after_a_new_ready() -> None:
    outbox = PeerOutbox(1 << 20, keep_s=60)
    outbox.queue_packed(p.RESULT, _result("a"))
    outbox.queue_packed(p.LOG, p.pack({"job_id": "a", "attempt": 1, "stream": "stdout",
                                       "data": "x"}))
    assert [r["job_id"] for r in _results(outbox)] == ["a"]
    outbox.queue_packed(p.RESULT, _result("b"))
    assert [r["job_id"] for r in _results(outbox)] == ["b"]
    outbox.resend_recent()
    assert [r["job_id"] for r in _results(outbox)] == ["a", "b"]  # results only, in order
    outbox.resend_recent()  # sent again once: kept as sent now, not twice
    assert [r["job_id"] for r in _results(outbox)] == ["a", "b"]


def test_old_results_and_those_past_the_byte_bound_are_forgotten(monkeypatch) -> None:
    outbox = PeerOutbox(1 << 20, keep_s=5)
    outbox.queue_packed(p.RESULT, _result("old"))
    _results(outbox)
    now = time.monotonic()
    monkeypatch.setattr(peer.time, "monotonic", lambda: now + 10)
    outbox.queue_packed(p.RESULT, _result("new"))
    _results(outbox)
    outbox.resend_recent()
    assert [r["job_id"] for r in _results(outbox)] == ["new"]
    monkeypatch.setattr(peer, "RECENT_RESULT_MESSAGES", 0)
    outbox.queue_packed(p.RESULT, _result("big"))
    _results(outbox)
    outbox.resend_recent()
    assert _results(outbox) == []



def test_an_outbox_without_a_window_keeps_nothing() -> None:
    outbox = PeerOutbox(1 << 20)
    outbox.queue_packed(p.RESULT, _result("a"))
    _results(outbox)
    outbox.resend_recent()
    assert _results(outbox) == []
