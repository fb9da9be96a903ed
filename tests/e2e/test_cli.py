"""The `zjobs` command as a user runs it: `up`, `submit --wait`, `status`, `tail`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.cluster import ROOT, Cluster
from tests.waiting import free_port, wait_until

from .up import session_processes


def zjobs(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zjobs", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_up_runs_everything_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(4)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
           "ZJOBS_FRONTEND": f"tcp://127.0.0.1:{ports[0]}",
           "ZJOBS_BACKEND": f"tcp://127.0.0.1:{ports[1]}",
           "ZJOBS_EVENTS": f"tcp://127.0.0.1:{ports[2]}", "ZJOBS_PORT": str(ports[3]),
           "ZJOBS_DATA_DIR": str(tmp_path / "store")}
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
    up = subprocess.Popen([sys.executable, "-m", "zjobs", "up", "--workers", "2"], cwd=ROOT,
                          env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        done = zjobs("submit", "add", "2", "3", "--wait", "--broker-timeout", "60", env=env,
                     timeout=90)  # the broker may take a while to start on a busy machine
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "5"
        status = zjobs("status", "--json", env=env)
        assert len(json.loads(status.stdout)["workers"]) == 2
        wait_until(lambda: _http_ok(f"http://127.0.0.1:{ports[3]}/health"), 30,
                   message="the API to answer")
        wait_until(lambda: "dashboard http://127.0.0.1" in (tmp_path / "up.log").read_text(),
                   30, message="up to say it is up, with the dashboard's address")
        assert up.poll() is None
        os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        stopped = time.monotonic()
        assert up.wait(15) == 0
        assert time.monotonic() - stopped < 10
        assert session_processes(up.pid) == []  # it returned once every descendant had gone
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
        log.close()


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_submit_status_and_tail_from_the_shell(cluster: Cluster) -> None:
    cluster.start_worker("w1")
    env = cluster.env()
    done = zjobs("submit", "chatty", "3", "--wait", env=env)
    assert (done.returncode, done.stdout.strip()) == (0, "3")
    job_id = zjobs("submit", "add", "1", "[2]", env=env)
    assert job_id.returncode == 0
    failed = zjobs("submit", "flaky", str(cluster.data_dir / "count"), "1", "--wait", env=env)
    assert failed.returncode == 1 and "ValueError" in failed.stderr
    jobs = cluster.client().list(task="chatty")
    log = zjobs("tail", jobs[0]["id"], env=env)
    assert log.stdout.splitlines() == ["line 1", "line 2", "line 3"]
    shown = zjobs("status", jobs[0]["id"], "--json", env=env)
    assert json.loads(shown.stdout)["status"] == "succeeded"


def test_every_option_of_every_command_has_help_text() -> None:
    import click

    from zjobs.cli import main

    missing = []

    def walk(command: click.Command, path: str) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")
        missing.extend(f"{path} {p.opts[0]}" for p in command.params
                       if isinstance(p, click.Option) and not p.help)

    walk(main, "zjobs")
    assert missing == []


def test_cancel_retry_and_list_from_the_shell(cluster: Cluster) -> None:
    env = cluster.env()
    job_id = zjobs("submit", "sleep", "30", "--queue", "idle", env=env).stdout.strip()
    done = zjobs("cancel", job_id, env=env)
    assert (done.returncode, done.stdout.strip()) == (0, f"{job_id} cancelled"), done.stderr
    listed = zjobs("list", "--status", "cancelled", "--queue", "idle", "--json", env=env)
    assert [j["id"] for j in json.loads(listed.stdout)["jobs"]] == [job_id]
    again = zjobs("retry", job_id, "--json", env=env)
    assert json.loads(again.stdout)[0]["status"] == "queued"
    missing = zjobs("cancel", "no-such-job", job_id, env=env)
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == ["error: no-such-job: no job no-such-job"]
    assert missing.stdout.strip() == f"{job_id} cancelled"


def test_queue_verbs_from_the_shell(cluster: Cluster) -> None:
    env = cluster.env()
    paused = zjobs("queue", "pause", "shell-q", env=env)
    assert (paused.returncode, paused.stdout) == (0, "queue shell-q paused, no rate limit\n")
    limited = zjobs("queue", "limit", "shell-q", "2.5", env=env)
    assert limited.stdout == "queue shell-q paused, at most 2.5 jobs/s\n", limited.stderr
    zjobs("submit", "noop", "1", "--queue", "shell-q", env=env)
    zjobs("submit", "noop", "2", "--queue", "shell-q", env=env)
    purged = zjobs("queue", "purge", "shell-q", env=env)
    assert (purged.returncode, purged.stdout) == (0, "queue shell-q: 2 jobs cancelled\n")
    resumed = zjobs("queue", "resume", "shell-q", env=env)
    assert resumed.stdout == "queue shell-q running, at most 2.5 jobs/s\n"
    unlimited = zjobs("queue", "limit", "shell-q", "0", env=env)
    assert unlimited.stdout == "queue shell-q running, no rate limit\n"
    for bad, status in ((["nan"], 1), (["--", "-1"], 1), (["fast"], 2)):
        refused = zjobs("queue", "limit", "shell-q", *bad, env=env)
        assert (refused.returncode, refused.stdout) == (status, ""), refused.stderr
        assert len(refused.stderr.splitlines()) == 1
        assert refused.stderr.startswith("error:"), refused.stderr
    assert "rate_limit must be" in zjobs("queue", "limit", "shell-q", "--", "-1", env=env).stderr
    missing = zjobs("queue", "limit", "shell-q", env=env)
    assert missing.returncode == 2 and missing.stderr.startswith("error:")


def test_submit_wait_says_when_no_live_worker_can_run_the_job(cluster: Cluster) -> None:
    """The job waits in silence no more: `unserved` on the job, one stderr line from
    `submit --wait`, and the wait goes on until a worker that can run it joins."""
    cluster.start_worker("elsewhere")  # serves `default` only
    env = cluster.env()
    started = time.monotonic()
    waiting = subprocess.Popen([sys.executable, "-m", "zjobs", "submit", "add", "2", "3",
                                "--queue", "lonely", "--wait"], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(waiting.stderr.readline, "")),
                              daemon=True)
    reader.start()
    try:
        wait_until(lambda: lines, 15, message="a line on stderr from submit --wait")
        assert time.monotonic() - started >= 2  # after a few seconds, not at once
        line = lines[0]
        assert "no live worker on queue 'lonely'" in line, line
        assert "zjobs worker --tasks MODULE --queues lonely" in line, line
        [job] = cluster.client().list(queue="lonely")
        assert job["unserved"] is True and job["status"] == "queued"
        assert cluster.client().get(job["id"])["unserved"] is True
        cluster.start_worker("lonely-1", "--queues", "lonely")
        assert waiting.wait(30) == 0, lines
    finally:
        if waiting.poll() is None:
            waiting.kill()
        waiting.wait()
        reader.join(5)
    assert waiting.stdout.read().strip() == "5"
    assert lines == [line]  # said once
    assert "unserved" not in cluster.client().get(job["id"])


def test_json_is_what_rest_returns_and_tables_fit_the_terminal(cluster: Cluster) -> None:
    from tests.api.server import start_api

    cluster.start_worker("a-worker-with-a-rather-long-name")
    api = start_api(cluster)
    env = cluster.env()
    client = cluster.client()
    job_id = client.submit("add", 1, 2)
    client.wait(job_id, timeout=30)
    client.submit("add", 3, 4, queue="a-queue-nobody-serves-with-a-long-name")
    client.schedule("nightly", "add", 1, 2, cron="0 3 * * *")
    with api.client() as http:
        for args, path in (((job_id,), f"/jobs/{job_id}"), (("--limit", "5"), "/jobs?limit=5"),
                           ((), "/schedules")):
            verb = ("status",) if args[:1] == (job_id,) else \
                ("list",) if path.startswith("/jobs?") else ("schedule", "list")
            shown = zjobs(*verb, *args, "--json", env=env)
            assert shown.returncode == 0, shown.stderr
            assert json.loads(shown.stdout) == http.get(path).json(), verb
        assert json.loads(zjobs("status", job_id, "--json", env=env).stdout)["created_at"] \
            .endswith("Z")  # ISO-8601 UTC, as REST
        def steady(workers: list[dict]) -> list[dict]:
            return [{k: v for k, v in w.items() if k != "last_seen_s"} for w in workers]

        shown = json.loads(zjobs("status", "--json", env=env).stdout)["workers"]
        assert steady(shown) == steady(http.get("/workers").json()["workers"])
    for columns in (80, 60):
        table = zjobs("status", env={**env, "COLUMNS": str(columns)})
        lines = table.stdout.splitlines()
        assert max(len(line) for line in lines) <= columns, table.stdout
        assert "…" not in table.stdout  # folded, never cut
        assert "unserved" in table.stdout.replace("\n", "")
