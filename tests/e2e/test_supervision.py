"""`zjobs up` as a service: restarts, no orphans, clean stops, errors a person can read."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster import Cluster
from tests.waiting import free_port, holds_for, wait_until
from zjobs import Client

from .up import ZJOBS, Up, session_processes


@pytest.fixture
def ups(tmp_path: Path) -> Iterator[list[Up]]:
    started: list[Up] = []
    try:
        yield started
    finally:
        for up in started:
            up.close()


def _start(ups: list[Up], tmp: Path, *args: str, **kw) -> Up:
    up = Up(tmp, *args, **kw)
    ups.append(up)
    return up.start()


def _workers(up: Up) -> list[dict]:
    with Client(up.env["ZJOBS_FRONTEND"], timeout=5) as client:
        return client.workers()


def test_a_sigkilled_worker_is_replaced_and_jobs_still_run(ups: list[Up], tmp_path: Path) -> None:
    up = _start(ups, tmp_path, "--workers", "2")
    up.wait_ready()
    wait_until(lambda: len(_workers(up)) == 2, 20, message="two workers")
    victim = _workers(up)[0]
    os.kill(victim["pid"], signal.SIGKILL)  # as the OOM killer would
    wait_until(lambda: "zjobs.child_restarted" in up.log(), 10, message="a restart")
    wait_until(lambda: sorted(w["name"] for w in _workers(up)) == sorted(
        [victim["name"], *(w["name"] for w in _workers(up) if w["name"] != victim["name"])])
        and all(w["pid"] != victim["pid"] for w in _workers(up)) and len(_workers(up)) == 2,
        20, message="the replacement worker to join")
    assert "killed by SIGKILL" in up.log()
    done = up.zjobs("submit", "add", "2", "3", "--wait")
    assert (done.returncode, done.stdout.strip()) == (0, "5"), done.stderr
    assert up.proc.poll() is None


def test_a_sigkilled_up_leaves_nothing_and_its_ports_serve_again(ups: list[Up],
                                                                  tmp_path: Path) -> None:
    first = _start(ups, tmp_path, "--workers", "2")
    first.wait_ready()
    assert len(session_processes(first.proc.pid)) >= 5  # up, broker, api, 2 workers (+ pools)
    first.proc.kill()
    first.proc.wait()
    wait_until(lambda: not session_processes(first.proc.pid), 5,
               message="every process of the killed zjobs up to exit")
    second = _start(ups, tmp_path, "--workers", "1", ports=first.ports)
    second.wait_ready()
    done = second.zjobs("submit", "add", "20", "22", "--wait")
    assert (done.returncode, done.stdout.strip()) == (0, "42"), done.stderr + second.log()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_up_alone_stops_every_descendant(ups: list[Up], tmp_path: Path,
                                                     sig: int) -> None:
    up = _start(ups, tmp_path, "--workers", "2")
    up.wait_ready()
    assert up.zjobs("submit", "add", "1", "1", "--wait").stdout.strip() == "2"  # pools started
    os.kill(up.proc.pid, sig)  # to zjobs up alone, as `docker stop` does
    assert up.proc.wait(30) == 0
    # it returned only once every process it started, and their children, had exited
    assert session_processes(up.proc.pid) == []
    assert "zjobs.stopped" in up.log()


def test_restart_never_stops_everything_when_a_child_dies(ups: list[Up], tmp_path: Path) -> None:
    up = _start(ups, tmp_path, "--workers", "1", "--restart", "never")
    up.wait_ready()
    wait_until(lambda: _workers(up), 20, message="the worker")
    os.kill(_workers(up)[0]["pid"], signal.SIGKILL)
    assert up.proc.wait(30) == 1
    assert session_processes(up.proc.pid) == []
    last = up.log().strip().splitlines()[-1]
    assert last.startswith("error: worker-1 exited (killed by SIGKILL)"), last


def test_a_child_that_keeps_failing_at_start_ends_up_with_one_line(ups: list[Up],
                                                                   tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "workers_only.py").write_text(  # imports in the --tasks check, not in a worker
        "import sys\nif 'worker' in sys.argv:\n    raise RuntimeError('not in a worker')\n")
    up = _start(ups, tmp_path, "--workers", "1", "--tasks", "workers_only", cwd=project)
    assert up.proc.wait(60) == 1
    errors = [line for line in up.log().splitlines() if line.startswith("error: ")]
    assert errors[-1].startswith("error: worker-1 failed 5 times in a row"), errors
    assert "cannot import task module 'workers_only' (RuntimeError: not in a worker)" \
        in errors[-1]
    assert "Traceback" not in up.log()
    assert session_processes(up.proc.pid) == []


def test_up_checks_its_tasks_before_it_says_it_is_up(ups: list[Up], tmp_path: Path) -> None:
    started = time.monotonic()
    up = _start(ups, tmp_path, "--workers", "2", "--tasks", "missing_module")
    assert up.proc.wait(30) == 1
    assert time.monotonic() - started < 10
    log = up.log()
    assert "zjobs is up" not in log and "Traceback" not in log
    assert [line for line in log.splitlines() if line.startswith("error: ")] == [
        "error: cannot import task module 'missing_module' (ModuleNotFoundError: No module "
        "named 'missing_module'); run from the directory that holds it, or fix --tasks"]
    assert log.strip().splitlines()[-1].startswith("error: ")
    assert "worker-1" not in log  # no worker was started, so none failed
    assert session_processes(up.proc.pid) == []


def test_a_port_in_use_is_one_clear_line_at_once(ups: list[Up], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = _start(ups, tmp_path, ports=[port, free_port(), free_port(), free_port()])
        assert up.proc.wait(15) == 1
    assert up.log().strip() == (f"error: port {port} (--frontend tcp://127.0.0.1:{port}) is "
                                "already in use; is another zjobs running? Stop it, or pick a "
                                "free port with --frontend")


def test_broker_down_is_one_error_line_naming_the_endpoint(tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    done = subprocess.run([str(ZJOBS), "submit", "add", "1", "2", "--broker-timeout", "2",
                           "--frontend", endpoint], capture_output=True, text=True, timeout=30)
    assert time.monotonic() - started < 10
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: broker not reachable at {endpoint} within 2 s; is 'zjobs broker' "
        "(or 'zjobs up') running there?"]
    debug = subprocess.run([str(ZJOBS), "--debug", "status", "--broker-timeout", "0.5",
                            "--frontend", endpoint], capture_output=True, text=True, timeout=30)
    assert "Traceback" in debug.stderr and debug.returncode == 1


def test_shell_mistakes_are_usage_errors(cluster: Cluster) -> None:
    env = cluster.env()
    cases = {
        ("submit", "add", "[1,2"): "is not valid JSON",
        ("submit", "add", "1", "--run-at", "soonish"): "run_at",
        ("status", "--log-level", "loud"): "No such option",
        ("worker", "--log-level", "loud"): "'loud' is not one of",
    }
    for args, expected in cases.items():
        done = subprocess.run([str(ZJOBS), *args], env=env, capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 2, (args, done.stderr)
        [line] = done.stderr.splitlines()
        assert line.startswith("error: ") and expected in line, (args, line)
    unknown = subprocess.run([str(ZJOBS), "status", "01JUNKNOWNJOB"], env=env,
                             capture_output=True, text=True, timeout=30)
    assert unknown.returncode == 1
    assert unknown.stderr.splitlines() == ["error: no job 01JUNKNOWNJOB (not found)"]


def _user_project(root: Path) -> Path:
    """A user's project: their task module beside their own `worker.py`, `broker.py` and
    `api/`, modules with zjobs' old top-level names, which the tasks import and use."""
    root.mkdir()
    (root / "mymod.py").write_text(
        "import api\nimport broker\nimport worker\n\nfrom zjobs import task\n\n\n"
        "@task\ndef shout(word):\n    return word.upper() + '!'\n\n\n"
        "@task\ndef whose():\n    return [worker.NAME, api.NAME, broker.NAME]\n")
    (root / "worker.py").write_text("NAME = 'the user\\'s worker.py'\n")
    (root / "broker.py").write_text("NAME = 'the user\\'s broker.py'\n")
    (root / "api").mkdir()
    (root / "api" / "__init__.py").write_text("NAME = 'the user\\'s api/'\n")
    return root


def _user_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != "PYTHONPATH"}


def test_worker_tasks_come_from_the_current_directory(cluster: Cluster, tmp_path: Path) -> None:
    project = _user_project(tmp_path / "project")
    log = open(cluster.logs / "worker-user.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([str(ZJOBS), "worker", "--name", "user", "--tasks", "mymod"],
                            cwd=project, env=_user_env(cluster.env()), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    cluster.procs.append(proc)
    cluster.wait_for_worker("user")
    client = cluster.client()
    assert client.result(client.submit("shout", "hello"), timeout=30) == "HELLO!"


def test_up_tasks_come_from_the_current_directory(ups: list[Up], tmp_path: Path) -> None:
    project = _user_project(tmp_path / "project")
    up = Up(tmp_path, "--workers", "1", "--tasks", "mymod", cwd=project, command=[str(ZJOBS)])
    up.env = _user_env(up.env)
    ups.append(up)
    up.start().wait_ready()
    done = up.zjobs("submit", "shout", "hi", "--wait")
    assert (done.returncode, done.stdout.strip()) == (0, "HI!"), done.stderr + up.log()
    mine = up.zjobs("submit", "whose", "--wait")
    assert mine.returncode == 0, mine.stderr + up.log()
    assert json.loads(mine.stdout) == ["the user's worker.py", "the user's api/",
                                       "the user's broker.py"]



def test_reads_give_up_on_a_silent_broker_within_seconds(tmp_path: Path) -> None:
    """A listener that accepts connections and never speaks: status and list say so fast."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        endpoint = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        for args in (["status"], ["list", "--json"], ["schedule", "list"]):
            started = time.monotonic()
            done = subprocess.run([str(ZJOBS), *args, "--frontend", endpoint],
                                  capture_output=True, text=True, timeout=30)
            took = time.monotonic() - started
            assert took < 4, (args, took)
            assert done.returncode == 1 and done.stdout == ""
            assert done.stderr.splitlines() == [
                f"error: broker not reachable at {endpoint} within 2 s; is 'zjobs broker' "
                "(or 'zjobs up') running there?"], args
        patient = subprocess.run([str(ZJOBS), "status", "--frontend", endpoint,
                                  "--broker-timeout", "3.5"], capture_output=True, text=True,
                                 timeout=30)
        assert "within 3.5 s" in patient.stderr  # an explicit patience wins


def test_an_api_off_loopback_needs_a_token_or_open(ups: list[Up], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ZJOBS_API_TOKEN"}
    port = str(free_port())
    for command in (["api"], ["up", "--workers", "0"]):
        started = time.monotonic()
        done = subprocess.run([str(ZJOBS), *command, "--host", "0.0.0.0", "--port", port],
                              env=env, capture_output=True, text=True, timeout=30)
        assert time.monotonic() - started < 10
        assert done.returncode == 1, (command, done.stderr)
        assert done.stderr.splitlines() == [
            "error: refusing to serve the HTTP API on 0.0.0.0 without a token: set "
            "ZJOBS_API_TOKEN (clients then send 'Authorization: Bearer <token>'), or pass "
            "--open to serve it unprotected on purpose"], command
    protected = Up(tmp_path, "--workers", "0", "--host", "0.0.0.0")
    protected.env["ZJOBS_API_TOKEN"] = "s3cret"
    ups.append(protected)
    protected.start().wait_ready()
    assert httpx.get(protected.url + "/queues", timeout=10).status_code == 401
    protected.close()
    opened = _start(ups, tmp_path, "--workers", "0", "--host", "0.0.0.0", "--open")
    opened.wait_ready()
    assert httpx.get(opened.url + "/queues", timeout=10).status_code == 200


def test_a_request_held_at_shutdown_answers_503_without_a_traceback(ups: list[Up],
                                                                   tmp_path: Path) -> None:
    up = _start(ups, tmp_path, "--workers", "0")
    up.wait_ready()
    job = httpx.post(up.url + "/jobs", json={"task": "sleep", "args": [60]}, timeout=10).json()
    answers: list[httpx.Response] = []
    held = threading.Thread(target=lambda: answers.append(httpx.get(
        f"{up.url}/jobs/{job['id']}/result", params={"wait": 60}, timeout=90)))
    held.start()
    holds_for(lambda: not answers, 1.5, message="the request held")
    os.kill(up.proc.pid, signal.SIGTERM)
    held.join(30)
    assert [a.status_code for a in answers] == [503]
    assert answers[0].json()["error"]["code"] == "unavailable"
    assert up.proc.wait(30) == 0
    assert "Traceback" not in up.log() and "Exception in ASGI" not in up.log()
