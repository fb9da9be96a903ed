"""The exec sandbox end to end: a broker with CURVE keys, an API with a token, a worker
with --allow-exec, and programs that try to get out."""

from __future__ import annotations

import os
import pwd
import secrets
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker import JobFailed
from broker.curve import generate
from tests.api.server import ApiServer, start_api
from tests.cluster import Cluster
from tests.processes import DAEMONIZER, marked, new_marker
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(90)

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="a user of their own takes a root worker")

# Reads every secret key of the key directory, every /proc/*/environ it can, the API's
# environment by its pid, and /etc/shadow; prints what it got, or the error.
THIEF = textwrap.dedent("""
    import os, sys
    keys, api_pid = sys.argv[1], sys.argv[2]
    for name in ("broker", "worker", "api", "client"):
        try:
            print(name, "key:", open(os.path.join(keys, name + ".key_secret")).read())
        except OSError as exc:
            print(name, "key:", type(exc).__name__)
    environ = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ.append(open(f"/proc/{pid}/environ", "rb").read().decode("latin-1"))
        except OSError:
            pass
    print("environments read:", len(environ), " ".join(environ))
    try:
        print("api environ:", open(f"/proc/{api_pid}/environ", "rb").read().decode("latin-1"))
    except OSError as exc:
        print("api environ:", type(exc).__name__)
    try:
        print("shadow:", open("/etc/shadow").read())
    except OSError as exc:
        print("shadow:", type(exc).__name__)
""")


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[Cluster, ApiServer, Path]]:
    keys = tmp_path / "keys"
    generate(keys)
    cluster = Cluster(tmp_path / "run", curve_dir=keys)
    try:
        cluster.start_broker()
        cluster.start_worker("runner", "--allow-exec")
        yield cluster, start_api(cluster, token=secrets.token_hex(16)), keys
    finally:
        cluster.close()


@as_root
def test_an_exec_job_cannot_read_the_keys_or_the_api_token(
        secured: tuple[Cluster, ApiServer, Path]) -> None:
    cluster, api, keys = secured
    client = cluster.client()
    job_id = client.submit_exec("thief.py", {"thief.py": THIEF.encode()},
                                args=[str(keys), str(api.proc.pid)], timeout_s=30)
    assert client.result(job_id, timeout=60)["exit_code"] == 0
    output = "\n".join(line["data"] for line in client.logs(job_id))
    assert api.token not in output
    for role in ("broker", "worker", "api", "client"):
        secret = (keys / f"{role}.key_secret").read_text()
        assert secret.split("secret-key")[1][:20] not in output
        assert f"{role} key: FileNotFoundError" in output or f"{role} key: PermissionError" \
            in output, output
    assert "api environ: FileNotFoundError" in output  # not even in its view of /proc
    assert "shadow: PermissionError" in output
    assert "ZJOBS_" not in output  # the worker's settings are no job's business


def test_a_setsid_daemon_dies_at_the_timeout_and_the_error_quotes_the_jobs_limit(
        cluster: Cluster) -> None:
    cluster.start_worker("runner", "--allow-exec")
    client = cluster.client()
    marker = new_marker()
    job_id = client.submit_exec("daemonize.py", {"daemonize.py": DAEMONIZER.encode()},
                                args=[marker, "wait"], timeout_s=2)
    wait_until(lambda: len(marked(marker)) == 2, 20, message="the program and its daemon up")
    with pytest.raises(JobFailed) as caught:
        client.result(job_id, timeout=30)
    assert not marked(marker), "the daemon outlived the job"
    error = caught.value.error
    assert error["type"] == "Timeout"
    assert "its timeout of 2 s" in error["message"], error["message"]
    job = client.get(job_id)
    # killed at 2 s (SIGKILL after a 0.5 s grace), reported at once: not the 7 s backstop
    assert job["finished_at"] - job["started_at"] < 2 + 1.5


@as_root
def test_exec_user_names_the_user_jobs_run_as(cluster: Cluster) -> None:
    cluster.start_worker("runner", "--allow-exec", "--exec-user", "daemon")
    client = cluster.client()
    job_id = client.submit_exec("whoami.py", {"whoami.py": b"import os; print(os.getuid())"})
    client.result(job_id, timeout=30)
    assert [line["data"] for line in client.logs(job_id)] == [str(pwd.getpwnam("daemon").pw_uid)]
    assert "exec.box" in cluster.log_text("worker-runner")


@as_root
def test_an_exec_user_that_does_not_exist_stops_the_worker_with_one_line(
        cluster: Cluster) -> None:
    proc = cluster.start_worker("runner", "--allow-exec", "--exec-user", "no-such-user-zjobs",
                                wait=False)
    assert proc.wait(30) == 1
    log = cluster.log_text("worker-runner")
    assert "error: --exec-user no-such-user-zjobs: no such user on this host" in log
    assert "Traceback" not in log
