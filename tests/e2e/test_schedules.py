"""Schedules on real processes: firing about once a second, removal, no burst after downtime,
and the `zjobs schedule` verbs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

from tests.cluster import ROOT, Cluster
from tests.waiting import wait_until


def _jobs(cluster: Cluster, queue: str) -> list[dict]:
    with cluster.client() as client:
        return client.list(queue=queue, limit=1000)


def _slot(job: dict) -> float:
    return float(job["idempotency_key"].rsplit(":", 1)[1])


def _after(wall: float) -> bool:
    return time.time() >= wall


def test_every_second_fires_about_once_a_second_and_stops_when_removed(
        cluster: Cluster) -> None:
    queue = f"beat-{uuid.uuid4().hex[:8]}"  # no worker: the jobs stay and are counted
    client = cluster.client()
    client.schedule("beat", "noop", every_s=1, queue=queue)
    wait_until(lambda: _jobs(cluster, queue), 10, message="the first firing")
    start_count, started = len(_jobs(cluster, queue)), time.monotonic()
    wait_until(lambda: len(_jobs(cluster, queue)) >= start_count + 3, 10,
               message="three more firings")
    elapsed = time.monotonic() - started
    fired = len(_jobs(cluster, queue)) - start_count
    assert fired <= elapsed + 1.5, (fired, elapsed)  # about once a second, not faster
    jobs = _jobs(cluster, queue)
    slots = sorted(_slot(j) for j in jobs)
    assert all(s.is_integer() for s in slots) and len(set(slots)) == len(slots)
    assert all(j["schedule"] == "beat" for j in jobs)

    client.unschedule("beat")
    removed_count, removed_at = len(_jobs(cluster, queue)), time.time()
    wait_until(lambda: _after(removed_at + 2.5), 5, message="two slots to pass")
    assert len(_jobs(cluster, queue)) == removed_count
    assert client.schedules() == []


def test_no_burst_after_the_broker_was_down_for_several_slots(cluster: Cluster) -> None:
    queue = f"down-{uuid.uuid4().hex[:8]}"
    with cluster.client() as client:
        client.schedule("beat", "noop", every_s=1, queue=queue)
    wait_until(lambda: len(_jobs(cluster, queue)) >= 2, 10, message="two firings")
    assert cluster.broker is not None
    cluster.kill(cluster.broker)
    killed = time.time()
    wait_until(lambda: _after(killed + 3.5), 6, message="three or four slots to pass")
    restarted = time.time()
    cluster.start_broker()  # same ports, same store
    # firing resumes: a job for a slot after the restart
    wait_until(lambda: any(_slot(j) > restarted for j in _jobs(cluster, queue)), 10,
               message="a firing after the restart")
    missed = [j for j in _jobs(cluster, queue) if killed < _slot(j) <= restarted]
    assert len(missed) <= 1, [_slot(j) for j in missed]  # one catch-up at most, no burst
    slots = [_slot(j) for j in _jobs(cluster, queue)]
    assert len(set(slots)) == len(slots)
    with cluster.client() as client:
        [shown] = client.schedules()
    assert shown["next_run_at"] > restarted and shown["last_run_at"] > restarted - 1


def zjobs(cluster: Cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zjobs", *args], cwd=ROOT,
                          env=cluster.env(), capture_output=True, text=True, timeout=30)


def test_the_schedule_verbs(cluster: Cluster) -> None:
    added = zjobs(cluster, "schedule", "add", "nightly", "add", "1", "2", "--cron", "0 3 * * *",
                  "--queue", "night", "--json")
    assert added.returncode == 0, added.stderr
    shown = json.loads(added.stdout)  # PUT /schedules/{name}'s body
    assert (shown["name"], shown["task"], shown["args"], shown["cron"], shown["queue"]) == \
        ("nightly", "add", [1, 2], "0 3 * * *", "night")
    assert zjobs(cluster, "schedule", "add", "often", "noop", "--every", "60").returncode == 0
    listed = zjobs(cluster, "schedule", "list", "--json")
    assert [s["name"] for s in json.loads(listed.stdout)["schedules"]] == ["nightly", "often"]
    table = zjobs(cluster, "schedule", "list")
    assert "every 60 s" in table.stdout and "0 3 * * *" in table.stdout

    removed = zjobs(cluster, "schedule", "remove", "often")
    assert removed.returncode == 0 and "removed often" in removed.stdout
    listed = zjobs(cluster, "schedule", "list", "--json")
    assert [s["name"] for s in json.loads(listed.stdout)["schedules"]] == ["nightly"]

    missing = zjobs(cluster, "schedule", "remove", "often")
    assert missing.returncode == 1 and missing.stderr.startswith("error:")
    assert "no schedule often" in missing.stderr
    bad = zjobs(cluster, "schedule", "add", "x", "noop", "--cron", "99 * * * *")
    assert bad.returncode == 1 and "bad cron expression" in bad.stderr
    neither = zjobs(cluster, "schedule", "add", "x", "noop")
    assert neither.returncode == 2 and "exactly one of --cron and --every" in neither.stderr
