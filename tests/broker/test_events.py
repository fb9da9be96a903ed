"""The event log's publish side: a turn's events as PUB messages, one per run of a type."""

from __future__ import annotations

from zjobs.broker.core.events import EventLog
from zjobs.broker.wire import protocol as p


def _emit(log: EventLog, types: list[str], data: str = "") -> None:
    for type_ in types:
        log.emit(type_, {"job_id": "j", "data": data})


def _decoded(messages: list[list[bytes]]) -> list[dict]:
    return [event for frames in messages for event in p.decode_events(frames)]


def test_each_run_of_one_type_is_one_message_in_seq_order() -> None:
    log = EventLog(last_seq=41)
    _emit(log, ["job.submitted"] * 3 + ["job.started"] + ["job.submitted"] * 2 + ["log"])
    messages = log.take_messages(max_bytes=1 << 20)
    assert [(frames[0], len(frames)) for frames in messages] == [
        (b"job.submitted", 3), (b"job.started", 2), (b"job.submitted", 3), (b"log", 2)]
    assert [len(p.decode_events(frames)) for frames in messages] == [3, 1, 2, 1]
    assert [e["seq"] for e in _decoded(messages)] == list(range(42, 49))
    assert log.pending == [] and log.take_messages(1 << 20) == []


def test_a_run_is_cut_at_the_size_limit_and_a_larger_event_goes_alone() -> None:
    log = EventLog()
    _emit(log, ["log"] * 10, data="x" * 100)
    _emit(log, ["log"], data="y" * 1000)
    _emit(log, ["log"] * 2, data="z" * 100)
    body_bytes = len(log.pending[0][1])
    messages = log.take_messages(max_bytes=3 * body_bytes)
    assert [len(p.decode_events(frames)) for frames in messages] == [3, 3, 3, 1, 1, 2]
    assert all(len(frames[-1]) <= 3 * body_bytes + 1 for frames in messages if len(frames) == 3)
    assert [e["seq"] for e in _decoded(messages)] == list(range(1, 14))


def test_the_replay_window_keeps_every_event_of_a_batch() -> None:
    log = EventLog()
    _emit(log, ["job.succeeded"] * 5)
    log.take_messages(1 << 20)
    reply = p.unpack(log.replay(since=2, types=("job.",), limit=10))
    assert [e["seq"] for e in reply["events"]] == [3, 4, 5]
