"""The two clients' public surface, and the shared plans behind it (pure: no sockets)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import closing, nullcontext
from typing import Any

import pytest

from zjobs import AsyncClient, Client, JobCancelled, JobFailed
from zjobs.broker.client.plans import SUBMIT_CHUNK, Batch, Call, Emit, Live, Plans, returning
from zjobs.broker.wire import protocol as p


def _public(cls: type) -> dict[str, Any]:
    return {name: getattr(cls, name) for name in dir(cls) if not name.startswith("_")}


def _parameters(fn: Callable[..., Any]) -> list[tuple[str, Any, Any, Any]]:
    return [(q.name, q.kind, q.default, q.annotation)
            for q in inspect.signature(fn).parameters.values()]


def test_both_clients_have_the_same_methods_with_the_same_parameters() -> None:
    sync, async_ = _public(Client), _public(AsyncClient)
    assert sorted(sync) == sorted(async_)
    assert _parameters(Client.__init__) == _parameters(AsyncClient.__init__)
    for name, method in sync.items():
        assert _parameters(method) == _parameters(async_[name]), name


def test_each_async_method_is_the_awaitable_kind_of_the_blocking_one() -> None:
    async_ = _public(AsyncClient)
    for name, method in _public(Client).items():
        other = async_[name]
        returns = inspect.signature(method).return_annotation
        if other is method:  # defined once in the shared base: not I/O, plain on both
            assert not inspect.iscoroutinefunction(method), name
        elif inspect.isgeneratorfunction(method):
            assert inspect.isasyncgenfunction(other), name
            item = returns.removeprefix("Generator[").removesuffix(", None, None]")
            assert inspect.signature(other).return_annotation == f"AsyncGenerator[{item}, None]"
        else:
            assert inspect.isfunction(method) and not inspect.iscoroutinefunction(method), name
            assert inspect.iscoroutinefunction(other), name
            assert inspect.signature(other).return_annotation == returns, name


# The method table of the interface, parameters as a user writes them.
INTERFACE = {
    "__init__": '(self, endpoint="tcp://127.0.0.1:5555", *, curve=None, timeout=10.0, '
                'events_endpoint=None)',
    "submit": '(self, task, *args, queue="default", priority=0, timeout_s=None, max_retries=0, '
              'retry_backoff_s=1.0, run_at=None, idempotency_key=None, depends_on=None, '
              '**kwargs)',
    "submit_many": "(self, jobs)",
    "chain": "(self, jobs)",
    "get": "(self, job_id)",
    "wait": "(self, job_id, timeout=None)",
    "result": "(self, job_id, timeout=None)",
    "cancel": "(self, job_id)",
    "retry": "(self, job_id)",
    "list": "(self, status=None, queue=None, limit=100, **filters)",
    "stats": "(self)",
    "events": '(self, types=("job.", "log", "worker."), since=None)',
    "map": '(self, fn, iterable, *, queue="default", chunksize=1, timeout=None)',
    "schedule": '(self, name, task, *args, cron=None, every_s=None, queue="default", '
                'priority=0, timeout_s=None, max_retries=0, **kwargs)',
    "schedules": "(self)",
    "unschedule": "(self, name)",
}


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_the_interface_table_holds(cls: type) -> None:
    for name, expected in INTERFACE.items():
        unannotated = inspect.signature(getattr(cls, name)).replace(
            parameters=[q.replace(annotation=inspect.Parameter.empty) for q in
                        inspect.signature(getattr(cls, name)).parameters.values()],
            return_annotation=inspect.Signature.empty)
        assert str(unannotated).replace("'", '"') == expected, name


# ---------------------------------------------------------------- plans, driven by hand


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _plans(clock: Clock | None = None, subscriber: Any = None) -> Plans:
    return Plans("tcp://127.0.0.1:1", subscriber or (lambda endpoint: nullcontext("sub")),
                 clock or Clock())


class Quiet(Exception):
    """Nothing more on the bus: the test has seen what it wanted."""


def drive(plan: Any, answer: Callable[[Any], Any]) -> list[Any]:
    """Run a plan against `answer(step)` (a fake broker) until it ends or is Quiet; what it
    emitted."""
    emitted, reply = [], None
    with closing(plan):
        while True:
            try:
                step = plan.send(reply)
            except StopIteration:
                return emitted
            try:
                reply = _answer(step, answer, emitted)
            except Quiet:
                return emitted


def _answer(step: Any, answer: Callable[[Any], Any], emitted: list[Any]) -> Any:
    if isinstance(step, Emit):
        emitted.append(step.item)
        return None
    if isinstance(step, Batch):
        return [answer(call) for call in step.calls]
    return answer(step)


def value(plan: Any, answer: Callable[[Any], Any]) -> Any:
    [result] = drive(returning(plan), answer)
    return result


def test_a_long_wait_is_sent_in_slices_and_times_out_on_the_clock() -> None:
    clock = Clock()
    sent: list[Call] = []

    def answer(call: Call) -> dict[str, Any]:
        sent.append(call)
        clock.now += call.body["timeout"]
        return {"id": "j", "status": "running"}

    with pytest.raises(TimeoutError, match="still running"):
        value(_plans(clock).wait("j", timeout=45), answer)
    assert [(c.command, c.body["timeout"], c.wait_s) for c in sent] == [
        (p.WAIT, 30.0, 30.0), (p.WAIT, 15.0, 15.0)]


def test_result_maps_a_terminal_job_to_its_value_or_exception() -> None:
    def job(status: str, **fields: Any) -> Callable[[Call], dict[str, Any]]:
        return lambda call: {"id": "j", "status": status, **fields}

    plans = _plans()
    assert value(plans.result("j"), job("succeeded", result=5)) == 5
    with pytest.raises(JobFailed):
        value(plans.result("j"), job("failed", error={"type": "E", "message": "m"}))
    with pytest.raises(JobCancelled):
        value(plans.result("j"), job("cancelled"))


def test_submit_many_pipelines_validated_batches_and_keeps_the_order() -> None:
    jobs = [{"task": "add", "args": [i]} for i in range(2 * SUBMIT_CHUNK + 5)]
    batches: list[int] = []

    def answer(call: Call) -> dict[str, Any]:
        batches.append(len(call.body["jobs"]))
        return {"ids": [str(job["args"][0]) for job in call.body["jobs"]]}

    ids = value(_plans().submit_many(iter(jobs)), answer)
    assert batches == [SUBMIT_CHUNK, SUBMIT_CHUNK, 5]
    assert ids == [str(i) for i in range(len(jobs))]


def _window(events: list[dict[str, Any]], page: int = 2) -> Callable[[Call], dict[str, Any]]:
    """EVENTS over `events`, `page` at a time."""
    def answer(call: Call) -> dict[str, Any]:
        if call.command == p.PING:
            return {"seq": 0, "events": "unused"}
        after = [e for e in events if e["seq"] > call.body["since"]]
        picked = after[:page]
        last = picked[-1]["seq"] if picked else call.body["since"]
        return {"events": picked, "last": last, "more": len(after) > page, "truncated": False}
    return answer


def _event(seq: int, type_: str = "job.progress") -> dict[str, Any]:
    return {"seq": seq, "type": type_}


def test_replay_pages_follow_more_from_the_last_seq() -> None:
    pages = drive(_plans().replay_pages(0), _window([_event(s) for s in range(1, 6)]))
    assert [[e["seq"] for e in page["events"]] for page in pages] == [[1, 2], [3, 4], [5]]


def test_events_replay_then_go_live_and_fill_a_gap_from_the_window() -> None:
    held = [_event(s, "worker.joined" if s == 4 else "job.progress") for s in range(1, 8)]
    live = iter([held[2], held[5], held[6]])  # 3 is a duplicate of the replay; 4 and 5 dropped
    opened: list[str] = []
    replay = _window(held[:3])

    def answer(step: Any) -> Any:
        if isinstance(step, Live):
            nonlocal replay
            replay = _window(held)  # by now the broker holds everything
            event = next(live, None)
            if event is None:
                raise Quiet
            return p.encode_event(event)
        return replay(step)

    def subscriber(endpoint: str) -> Any:
        opened.append(endpoint)
        return nullcontext("sub")

    seqs = [e["seq"] for e in drive(_plans(subscriber=subscriber).events(("job.",), since=0),
                                    answer)]
    assert seqs == [1, 2, 3, 5, 6, 7] and opened == ["tcp://127.0.0.1:1"]


def _message(events: list[dict[str, Any]]) -> list[bytes]:
    """One PUB message: a run of events of one type, as the broker sends it."""
    return p.encode_event_run(events[0]["type"].encode(), [p.pack(e) for e in events])


def test_events_read_batches_exactly_once_across_replays_and_gaps() -> None:
    types = ["job.started"] * 3 + ["log"] * 4 + ["job.started"] * 5 + ["job.succeeded"] * 3
    held = [_event(seq, type_) for seq, type_ in enumerate(types, start=1)]
    live = iter([
        _message(held[1:3]),     # 2 overlaps the replay of 1-2, 3 is new
        _message(held[3:7]),     # the log run, not wanted but counted
        [b"job.started", p.EVENT_BATCH, b"\xc1"],  # malformed: dropped, the gap is filled
        _message(held[9:12]),    # 8 and 9 lost on the wire: replayed before 10-12
        _message(held[12:15]),
    ])
    replays: list[int] = []
    replay = _window(held[:2])

    def answer(step: Any) -> Any:
        nonlocal replay
        if isinstance(step, Live):
            replay = _window(held)  # by now the broker holds everything
            message = next(live, None)
            if message is None:
                raise Quiet
            return message
        if step.command == p.EVENTS:
            replays.append(step.body["since"])
        return replay(step)

    got = drive(_plans().events(("job.",), since=0), answer)
    assert [e["seq"] for e in got] == [1, 2, 3, *range(8, 16)]
    assert replays == [0, 7, 9, 11, 13]  # the start, then the gap from 7, page by page
