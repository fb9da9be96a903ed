"""Schedules in the pure engine, with the fake clock: slots, firing, catch-up, restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from zjobs.broker.core import commands
from zjobs.broker.core.engine import Engine, EngineConfig
from zjobs.broker.core.schedules import build_schedule
from zjobs.broker.stores.store import Store
from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.errors import CommandError

from .test_engine import FakeClock

WALL0 = 1_700_000_000.0 + 1_000.0  # FakeClock's wall time at start (a multiple of 10 s)


def make_engine(path: Path, clock: FakeClock) -> Engine:
    return Engine(Store(path), clock, EngineConfig(heartbeat_interval_s=1.0))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(tmp_path: Path, clock: FakeClock) -> Engine:
    return make_engine(tmp_path, clock)


def put(engine: Engine, name: str, **body) -> dict:
    return commands.schedule(engine, {"name": name, "task": "echo", **body}, None)


def fired(engine: Engine) -> list[dict]:
    events = [p.unpack(body) for _, body in engine.events.take_pending()]
    return [e for e in events if e["type"] == "schedule.fired"]


def scheduled_jobs(engine: Engine) -> list:
    return sorted((j for j in engine.active.values() if j.schedule), key=lambda j: j.order)


def test_every_fires_once_per_slot_with_its_key(engine: Engine, clock: FakeClock) -> None:
    shown = put(engine, "beat", every_s=10, args=[1], kwargs={"x": 2}, queue="q", priority=3)
    assert shown["next_run_at"] == WALL0 + 10 and shown["last_run_at"] is None
    engine.tick()
    engine.flush()
    assert fired(engine) == []
    clock.t += 10
    engine.tick()
    engine.tick()  # the same slot again: nothing more
    engine.flush()
    [event] = fired(engine)
    [job] = scheduled_jobs(engine)
    assert event["name"] == "beat" and event["job_id"] == job.id and event["slot"] == WALL0 + 10
    assert job.idempotency_key == f"schedule:beat:{int(WALL0 + 10)}"
    assert (job.schedule, job.queue, job.priority, job.task) == ("beat", "q", 3, "echo")
    assert engine.lookup(job.id)["schedule"] == "beat"
    assert engine.schedules.get("beat").to_wire()["last_run_at"] == WALL0 + 10


def test_next_deadline_includes_the_next_due_time(engine: Engine, clock: FakeClock) -> None:
    clock.t += 9.8  # 0.2 s before the slot at WALL0 + 10
    put(engine, "beat", every_s=10)
    assert engine.tick() == pytest.approx(0.2)


def test_after_downtime_only_the_latest_missed_slot_fires(tmp_path: Path,
                                                          clock: FakeClock) -> None:
    first = make_engine(tmp_path, clock)
    put(first, "beat", every_s=10)
    first.flush()
    first.store.close()
    clock.t += 55  # slots WALL0+10 ... WALL0+50 missed
    again = make_engine(tmp_path, clock)
    again.tick()
    again.flush()
    [event] = fired(again)
    assert event["slot"] == WALL0 + 50
    assert again.schedules.get("beat").next_run_at == WALL0 + 60
    assert len(scheduled_jobs(again)) == 1


def test_a_slot_fires_at_most_once_across_restarts(tmp_path: Path, clock: FakeClock) -> None:
    first = make_engine(tmp_path, clock)
    put(first, "beat", every_s=10)
    first.flush()
    clock.t += 10
    first.tick()
    # the job is committed but the schedule's row written later (say the broker died between)
    first.schedules.committed()
    first.flush()
    first.store.close()
    again = make_engine(tmp_path, clock)
    assert again.schedules.get("beat").last_run_at is None  # the store still says "due"
    again.tick()
    again.flush()
    assert fired(again) == []
    assert [j.idempotency_key for j in again.active.values()] == \
        [f"schedule:beat:{int(WALL0 + 10)}"]


def test_cron_slots_are_the_expression_s_in_utc(engine: Engine, clock: FakeClock) -> None:
    shown = put(engine, "minutely", cron="*/2 * * * *")
    assert shown["next_run_at"] % 120 == 0 and shown["next_run_at"] > WALL0
    clock.t += shown["next_run_at"] - WALL0 + 300  # three slots passed: fire the latest only
    engine.tick()
    engine.flush()
    [event] = fired(engine)
    assert event["slot"] == shown["next_run_at"] + 240


def test_replace_and_remove(engine: Engine, clock: FakeClock) -> None:
    put(engine, "beat", every_s=10)
    put(engine, "beat", every_s=100, task="other")
    assert [s.to_wire()["task"] for s in engine.schedules.all()] == ["other"]
    clock.t += 10
    engine.tick()
    assert scheduled_jobs(engine) == []  # the replaced every-10 s entry is stale
    assert engine.schedules.remove("beat")
    clock.t += 100
    engine.tick()
    assert scheduled_jobs(engine) == []
    with pytest.raises(CommandError) as err:
        commands.unschedule(engine, {"name": "beat"}, None)
    assert err.value.code == "not_found"


def test_removal_is_durable(tmp_path: Path, clock: FakeClock) -> None:
    first = make_engine(tmp_path, clock)
    put(first, "a", every_s=10)
    put(first, "b", cron="0 * * * *")
    first.flush()
    first.schedules.remove("a")
    first.flush()
    first.store.close()
    again = make_engine(tmp_path, clock)
    [b] = again.schedules.all()
    assert b.to_wire()["cron"] == "0 * * * *" and b.to_wire()["task"] == "echo"


@pytest.mark.parametrize(("body", "message"), [
    ({"every_s": 0}, "every_s must be a number of seconds from 1 to 31622400"),
    ({"every_s": -1}, "from 1 to"),
    ({"every_s": 1e-300}, "from 1 to"),
    ({"every_s": 0.001}, "from 1 to"),
    ({"every_s": 1e30}, "a year; longer: use cron"),
    ({"every_s": 2**70}, "from 1 to"),
    ({"every_s": float("nan")}, "from 1 to"),
    ({"every_s": True}, "every_s must be a number"),
    ({"cron": "0 0 31 2 *"}, "never fires"),
    ({"cron": "0 0 30 2 *"}, "never fires"),
    ({"cron": "* * * *\x00 *"}, "cron must not contain NUL"),
    ({"cron": "61 * * * *"}, "bad cron expression"),
    ({"cron": "* * * *"}, "5 fields"),
    ({}, "exactly one of cron and every_s"),
    ({"cron": "* * * * *", "every_s": 5}, "exactly one of cron and every_s"),
    ({"every_s": 5, "max_retries": -1}, "max_retries"),
    ({"every_s": 5, "task": ""}, "task"),
    ({"every_s": 5, "task": "ec\x00ho"}, "task must not contain NUL"),
    ({"every_s": 5, "queue": "q\x00"}, "queue must not contain NUL"),
    ({"every_s": 5, "queue": "\udc80"}, "queue must be valid Unicode"),
])
def test_bad_schedules_are_refused(body: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_schedule("s", {"task": "echo", **body}, WALL0)


@pytest.mark.parametrize("name", ["", "n" * 201, "na\x00me", "\udc80", 7])
def test_a_schedule_name_follows_the_rule_for_text(engine: Engine, name: object) -> None:
    with pytest.raises(CommandError) as refused:
        put(engine, name)  # type: ignore[arg-type]
    assert refused.value.code == "bad_request" and "name" in refused.value.message
    assert len(engine.schedules) == 0


def test_the_bounds_of_every_s_are_accepted(engine: Engine) -> None:
    assert put(engine, "fast", every_s=1)["every_s"] == 1.0
    yearly = put(engine, "slow", every_s=366 * 86400)
    assert yearly["next_run_at"] <= WALL0 + 366 * 86400


def test_a_schedule_that_cannot_fire_costs_its_slot_not_the_loop(
        engine: Engine, clock: FakeClock) -> None:
    """A row stored before a rule refused it (here: a job that no longer builds) is logged
    and skipped at each slot; the other schedules and the loop go on."""
    put(engine, "bad", every_s=10)
    put(engine, "good", every_s=10)
    engine.schedules.get("bad").job["priority"] = 2**40  # as an older broker could store
    clock.t += 10
    engine.tick()
    engine.flush()
    assert [e["name"] for e in fired(engine)] == ["good"]
    assert engine.schedules.get("bad").next_run_at == WALL0 + 20
    clock.t += 10
    engine.tick()
    assert [e["name"] for e in fired(engine)] == ["good"]
