"""The exec sandbox on real processes: the job's user, environment, view and sockets."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.worker.test_exec_runner import exec_py
from zjobs.broker.wire.errors import StartError
from zjobs.worker.exec_box import ExecBox, exec_box, net_isolation_available
from zjobs.worker.exec_runner import ExecError

pytestmark = pytest.mark.timeout(30)

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users takes root")
NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory anyone may search and list (in /tmp, not under pytest's private one)."""
    path = Path(tempfile.mkdtemp(prefix="zjobs-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


# --------------------------------------------------------------------------- the job's user


@as_root
def test_a_root_worker_runs_jobs_as_nobody_without_its_groups(work_root: Path) -> None:
    outcome, lines = exec_py(
        """
        import os
        print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups())
        """,
        work_root,
    )
    assert outcome.exit_code == 0, lines.lines
    assert lines.of("stdout") == [f"{NOBODY.pw_uid} {NOBODY.pw_uid} {NOBODY.pw_gid} []"]


@as_root
def test_the_job_cannot_read_what_only_root_may(work_root: Path, open_dir: Path) -> None:
    secret = open_dir / "secret"
    secret.write_text("s3cret")
    secret.chmod(0o600)
    outcome, lines = exec_py(
        """
        import sys
        for path in sys.argv[1:]:
            try:
                print(open(path).read())
            except OSError as exc:
                print(type(exc).__name__)
        """,
        work_root,
        spec={"args": [str(secret), "/etc/shadow"]},
    )
    assert outcome.exit_code == 0, lines.lines
    assert lines.of("stdout") == ["PermissionError", "PermissionError"]


@as_root
def test_another_job_of_the_same_user_cannot_find_the_directory(open_dir: Path) -> None:
    outcome, lines = exec_py(
        """
        import os
        open("out/where", "w").write(os.getcwd())
        try:
            print(os.listdir(".."))
        except OSError as exc:
            print(type(exc).__name__)
        """,
        open_dir,  # a work root the job's user reaches as it is (nothing made reachable)
    )
    assert outcome.exit_code == 0, lines.lines
    assert lines.of("stdout") == ["PermissionError"]  # its parent is 0711: no listing
    assert Path(outcome.artifacts["where"].decode()).parent.parent == open_dir
    assert list(open_dir.iterdir()) == []


@as_root
def test_a_user_that_does_not_exist_stops_the_worker_at_start() -> None:
    with pytest.raises(StartError, match="no-such-user-zjobs: no such user"):
        exec_box("no-such-user-zjobs")
    assert exec_box("daemon").uid == pwd.getpwnam("daemon").pw_uid


@as_root
def test_without_a_mount_namespace_an_unreachable_directory_is_refused(work_root: Path) -> None:
    box = ExecBox("nobody", NOBODY.pw_uid, NOBODY.pw_gid, namespaces=False)
    with pytest.raises(ExecError, match="user nobody cannot reach .* is not searchable"):
        exec_py("print(1)", work_root, spec={"runtime": "sh"}, box=box)  # pytest's dirs: 0700


# --------------------------------------------------------------------------- environment


def test_the_environment_is_the_minimal_one_plus_the_spec(
    work_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZJOBS_API_TOKEN", "worker-secret")
    outcome, lines = exec_py(
        """
        import os
        env = dict(os.environ)
        assert env.pop("HOME") == os.getcwd(), env
        print(sorted(env.items()))
        """,
        work_root,
        spec={"env": {"FOO": "bar"}},
    )
    assert outcome.exit_code == 0, lines.lines
    expected = [("FOO", "bar"), ("LANG", os.environ.get("LANG", "C.UTF-8")),
                ("PATH", "/usr/local/bin:/usr/bin:/bin"), ("PYTHONUNBUFFERED", "1")]
    assert lines.of("stdout") == [str(expected)]


def test_the_jobs_environment_never_reaches_the_supervisor(work_root: Path,
                                                           open_dir: Path) -> None:
    """The shim may run as root: a PYTHONPATH of the job's must not make it import code."""
    ran = open_dir / "ran"
    (open_dir / "json.py").write_text(f"open({str(ran)!r}, 'w').close()\n")
    outcome, lines = exec_py("print('hi')", work_root, spec={"env": {"PYTHONPATH": str(open_dir)}})
    assert outcome.exit_code == 0, lines.lines
    assert lines.of("stdout") == ["hi"]
    assert not ran.exists(), "the supervisor imported the job's json.py"


# --------------------------------------------------------------------------- what it sees


@pytest.mark.skipif(not ExecBox("probe").launch(False).private_mounts,
                    reason="no pid and mount namespace on this host")
def test_the_job_sees_only_its_own_processes(work_root: Path) -> None:
    outcome, lines = exec_py(
        """
        import os, sys
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        print(pids)
        try:
            open(f"/proc/{sys.argv[1]}/environ", "rb").read()
            print("read the worker's environment")
        except OSError as exc:
            print(type(exc).__name__)
        """,
        work_root,
        spec={"args": [str(os.getpid())]},
    )
    assert outcome.exit_code == 0, lines.lines
    assert lines.of("stdout") == ["[1, 2]", "FileNotFoundError"]  # the shim, the program


@pytest.mark.skipif(not ExecBox("probe").launch(False).private_mounts,
                    reason="no mount namespace on this host")
def test_hidden_directories_look_empty(work_root: Path, open_dir: Path) -> None:
    (open_dir / "worker.key_secret").write_text("secret key")
    (open_dir / "worker.key_secret").chmod(0o644)
    box = ExecBox("the worker's user", hidden=(str(open_dir),))  # no uid switch: mounts alone
    outcome, lines = exec_py(
        "import os, sys; print(os.listdir(sys.argv[1]))", work_root,
        spec={"args": [str(open_dir)]}, box=box,
    )
    assert outcome.exit_code == 0, lines.lines
    assert lines.of("stdout") == ["[]"]
    assert (open_dir / "worker.key_secret").read_text() == "secret key"  # the host's is intact


def test_the_program_gets_no_descriptor_of_ours_and_an_empty_stdin(work_root: Path) -> None:
    outcome, lines = exec_py(
        """
        import os, sys
        print(sorted(os.listdir("/proc/self/fd")), repr(sys.stdin.read()))
        """,
        work_root,
    )
    assert outcome.exit_code == 0, lines.lines
    assert lines.of("stdout") == ["['0', '1', '2', '3'] ''"]  # 3: listdir's own


def test_a_program_killed_by_a_signal_reports_it(work_root: Path) -> None:
    outcome, lines = exec_py("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", work_root)
    assert outcome.exit_code == -9, lines.lines
    assert not outcome.timed_out


def test_a_program_that_cannot_start_is_an_exec_error(work_root: Path) -> None:
    with pytest.raises(ExecError, match="cannot start 'no-such-runtime-zjobs'"):
        exec_py("", work_root, spec={"runtime": "no-such-runtime-zjobs"})


# --------------------------------------------------------------------------- sockets


CONNECT_UNIX = """
    import socket, sys
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(sys.argv[1])
            print("connected", client.recv(10).decode())
    except OSError as exc:
        print("blocked", type(exc).__name__)
"""


@pytest.fixture
def unix_server(open_dir: Path) -> Iterator[str]:
    """A Unix socket anyone may connect to (as PostgreSQL's is); it says hello to each."""
    path = str(open_dir / "server.sock")
    stop = threading.Event()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        os.chmod(path, 0o777)
        server.listen(8)
        server.settimeout(0.1)

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.sendall(b"hello")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            yield path
        finally:
            stop.set()
            thread.join(5)


@pytest.mark.skipif(not net_isolation_available(), reason="no network namespace on this host")
def test_net_policy_none_closes_unix_sockets(work_root: Path, unix_server: str) -> None:
    _, open_lines = exec_py(CONNECT_UNIX, work_root, spec={"args": [unix_server]})
    assert open_lines.of("stdout") == ["connected hello"]  # the socket is reachable...
    _, closed = exec_py(CONNECT_UNIX, work_root, spec={"args": [unix_server], "net_policy": "none"})
    assert closed.of("stdout") == ["blocked PermissionError"]  # ...but not without network


@pytest.mark.skipif(not net_isolation_available(), reason="no network namespace on this host")
def test_net_policy_none_still_allows_socketpairs_and_loopback(work_root: Path) -> None:
    outcome, lines = exec_py(
        textwrap.dedent("""
            import socket
            a, b = socket.socketpair()
            a.sendall(b"x")
            print(b.recv(1).decode())
            socket.socket(socket.AF_INET).close()
            print("inet socket")
        """),
        work_root,
        spec={"net_policy": "none"},
    )
    assert outcome.exit_code == 0, lines.lines
    assert lines.of("stdout") == ["x", "inet socket"]


# --------------------------------------------------------------------------- the runner dies


RUNNER = """
import asyncio, sys
from zjobs.worker.exec_runner import ExecBox, run_exec

async def show(stream, line):
    print(line, flush=True)

box = ExecBox("the worker's user", namespaces=False) if sys.argv[3] == "subreaper" else None
asyncio.run(run_exec({"entry": "main.py", "args": [sys.argv[1], "wait"]},
                     {"main.py": open(sys.argv[2], "rb").read()}, {}, show, box=box,
                     work_root=sys.argv[4]))
"""


@pytest.mark.parametrize("mode", ["namespaces", "subreaper"])
def test_a_job_does_not_outlive_its_runner_killed_with_sigkill(open_dir: Path, mode: str) -> None:
    """A worker killed with -9 cannot stop its jobs: their supervisor sees it go and does."""
    import signal
    import subprocess
    import sys

    from tests.cluster import ROOT
    from tests.processes import DAEMONIZER, marked, new_marker
    from tests.waiting import wait_until

    marker = new_marker()
    program = open_dir / "daemonize.py"
    program.write_text(DAEMONIZER)
    work_root = open_dir / "work"  # what a runner killed with -9 leaves, the fixture removes
    work_root.mkdir(mode=0o755)
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, marker, str(program), mode,
                               str(work_root)],
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert runner.stdout.readline().strip() == "ready"
        assert len(marked(marker)) == 3  # the runner, the program and its daemon
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
        # SIGTERM at once (ignored by the daemon), SIGKILL after the 0.5 s grace
        wait_until(lambda: not marked(marker), 2.0, message="the job's processes gone")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(runner.pid, signal.SIGKILL)
        runner.wait(10)
        runner.stdout.close()
