"""The exec sandbox end to end: a broker with CURVE keys, an API with a token, a worker
with --allow-exec, and programs that try to get out."""

from __future__ import annotations

import os
import pwd
import secrets
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.server import ApiServer, start_api
from tests.cluster import Cluster
from tests.processes import DAEMONIZER, marked, new_marker
from tests.waiting import wait_until
from zjobs import JobFailed
from zjobs.broker.wire.curve import generate

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


# A root test starts a worker as nobody: in a mount namespace of its own where the
# interpreter, if it lives under a directory nobody cannot search (pyenv under /root),
# is bound back into view; then setpriv drops to nobody.
AS_NOBODY = """
set -e
if [ -n "$HIDDEN" ]; then
    mount --bind "$PYTHON_HOME" "$KEEP"
    mount -t tmpfs -o mode=0755 tmpfs "$HIDDEN"
    mkdir -p "$PYTHON_HOME"
    mount --move "$KEEP" "$PYTHON_HOME"
fi
exec setpriv --reuid "$RUN_UID" --regid "$RUN_GID" --clear-groups "$@"
"""


def _start_worker_as_nobody(cluster: Cluster, tmp_path: Path, *extra: str) -> Any:
    import subprocess
    import sys

    from tests.cluster import ROOT
    from zjobs.worker.exec_box import blocking_ancestor

    nobody = pwd.getpwnam("nobody")
    home = str(Path(sys.base_prefix).resolve())
    keep = tmp_path / "keep"
    keep.mkdir()
    env = {**cluster.env(), "RUN_UID": str(nobody.pw_uid), "RUN_GID": str(nobody.pw_gid),
           "HIDDEN": blocking_ancestor(home, nobody.pw_uid, nobody.pw_gid) or "",
           "PYTHON_HOME": home, "KEEP": str(keep)}
    log = open(cluster.logs / "worker-nobody.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", AS_NOBODY, "as-nobody",
         sys.executable, "-m", "zjobs", "worker", "--name", "nobody", "--tasks",
         "tests.tasks", "--allow-exec", "--concurrency", "1", *extra],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    cluster.procs.append(proc)
    return proc


@as_root
def test_a_worker_that_is_not_root_runs_jobs_as_itself_and_says_so_once(
        cluster: Cluster, tmp_path: Path) -> None:
    _start_worker_as_nobody(cluster, tmp_path)
    cluster.wait_for_worker("nobody")
    client = cluster.client()
    marker = new_marker()
    job_id = client.submit_exec("wait.py", {"wait.py": b"import signal; signal.pause()"},
                                args=[marker])
    pids = wait_until(lambda: marked(marker), 20, message="the job to run")
    uids = {Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0]
            for pid in pids}
    assert uids == {str(pwd.getpwnam("nobody").pw_uid)}  # the worker's own user
    client.cancel(job_id)
    wait_until(lambda: not marked(marker), 10, message="the job's processes gone")
    log = cluster.log_text("worker-nobody")
    assert log.count("exec.same_user") == 1, log


@as_root
def test_a_worker_that_is_not_root_refuses_another_exec_user_at_start(
        cluster: Cluster, tmp_path: Path) -> None:
    proc = _start_worker_as_nobody(cluster, tmp_path, "--exec-user", "daemon")
    assert proc.wait(30) == 1
    lines = cluster.log_text("worker-nobody").strip().splitlines()
    assert lines == ["error: --exec-user daemon needs a worker running as root (switching "
                     "users takes root); run the worker as root, or leave --exec-user out "
                     "and exec jobs run as the worker's own user"], lines
