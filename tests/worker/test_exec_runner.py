"""Tests for the exec runner: real subprocesses, real files, real sockets."""

from __future__ import annotations

import asyncio
import socket
import textwrap
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes import DAEMONIZER, marked, new_marker
from tests.waiting import wait_until
from zjobs.worker.exec_runner import (
    ExecBox,
    ExecError,
    ExecOutcome,
    net_isolation_available,
    run_exec,
    safe_relpath,
)

pytestmark = pytest.mark.timeout(30)


# --------------------------------------------------------------------------- helpers


class Lines:
    """An ``on_output`` callback that records lines and can wake a waiter on one."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.ready = asyncio.Event()

    async def __call__(self, stream: str, line: str) -> None:
        self.lines.append((stream, line))
        if line == "ready":
            self.ready.set()

    def of(self, stream: str) -> list[str]:
        return [line for s, line in self.lines if s == stream]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def box(request: pytest.FixtureRequest) -> ExecBox | None:
    """The host's default box, or (``subreaper``) the worker's own user with no namespace:
    the shim alone, as on a host where ``unshare`` gives nothing."""
    if request.param == "subreaper":
        return ExecBox("the worker's user", namespaces=False)
    return None


def exec_py(
    source: str,
    work_root: Path,
    *,
    spec: dict | None = None,
    inputs: dict[str, bytes] | None = None,
    **kwargs: Any,
) -> tuple[ExecOutcome, Lines]:
    lines = Lines()
    code = {"main.py": textwrap.dedent(source).encode()}
    full_spec = {"entry": "main.py", **(spec or {})}
    outcome = run(
        run_exec(full_spec, code, inputs or {}, lines, work_root=str(work_root), **kwargs)
    )
    return outcome, lines


# A program that starts a child which starts a grandchild; both ignore SIGTERM,
# the child holds a pipe of its own to the grandchild. Every one of them has the
# marker (argv[1]) on its command line; once all are up, the program says "ready"
# and waits forever.
SPAWNER = """
    import signal, subprocess, sys
    marker = sys.argv[1]
    GRANDCHILD = (
        "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.pause()"
    )
    CHILD = (
        "import signal, subprocess, sys\\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
        f"g = subprocess.Popen([sys.executable, '-c', {GRANDCHILD!r}, sys.argv[1]],"
        " stdout=subprocess.PIPE)\\n"
        "print('up', flush=True)\\n"
        "signal.pause()\\n"
    )
    child = subprocess.Popen([sys.executable, "-c", CHILD, marker], stdout=subprocess.PIPE,
                             text=True)
    child.stdout.readline()
    print("ready", flush=True)
    signal.pause()  # until the runner kills it
"""



# --------------------------------------------------------------------------- output


def test_stdout_and_stderr_lines_in_order_and_told_apart(work_root: Path) -> None:
    outcome, lines = exec_py(
        """
        import sys
        for i in range(3):
            print(f"out{i}", flush=True)
            print(f"err{i}", file=sys.stderr, flush=True)
        sys.stdout.write("crlf\\r\\n")
        sys.stdout.write("no newline at the end")
        sys.exit(3)
        """,
        work_root,
    )
    assert outcome.exit_code == 3
    assert not outcome.timed_out
    assert lines.of("stdout") == ["out0", "out1", "out2", "crlf", "no newline at the end"]
    assert lines.of("stderr") == ["err0", "err1", "err2"]


def test_non_utf8_output_and_a_200_kb_line(work_root: Path) -> None:
    outcome, lines = exec_py(
        """
        import sys
        sys.stdout.buffer.write(b"\\xff\\xfeabc\\n")
        sys.stdout.buffer.write(b"x" * 200_000 + b"\\n")
        sys.stdout.buffer.write(b"after\\n")
        """,
        work_root,
    )
    assert outcome.exit_code == 0
    out = lines.of("stdout")
    assert out[0] == "\ufffd\ufffdabc"
    assert out[-1] == "after"
    chunks = out[1:-1]
    assert "".join(chunks) == "x" * 200_000
    assert len(chunks) == 4
    assert all(len(chunk) <= 64 * 1024 for chunk in chunks)


def test_long_line_chunks_respect_max_line_bytes(work_root: Path) -> None:
    _outcome, lines = exec_py('print("a" * 25 + "é" * 10)', work_root, max_line_bytes=10)
    chunks = lines.of("stdout")
    assert "".join(chunks) == "a" * 25 + "é" * 10
    assert all(len(chunk.encode()) <= 10 for chunk in chunks)


# --------------------------------------------------------------------------- files


def test_input_file_readable_and_artifacts_returned_byte_for_byte(work_root: Path) -> None:
    binary = bytes(range(256)) * 4
    outcome, lines = exec_py(
        """
        import os
        data = open("data/in.txt", "rb").read()
        print(data.decode())
        open("out/copy.bin", "wb").write(open("blob.bin", "rb").read())
        os.makedirs("out/sub/deeper")
        open("out/sub/deeper/note.txt", "w").write("nested")
        open("out/empty", "wb").close()
        """,
        work_root,
        inputs={"data/in.txt": b"hello input", "./blob.bin": binary},
    )
    assert outcome.exit_code == 0
    assert lines.of("stdout") == ["hello input"]
    assert outcome.artifacts == {
        "copy.bin": binary,
        "empty": b"",
        "sub/deeper/note.txt": b"nested",
    }
    assert outcome.skipped_artifacts == []


def test_artifact_limits(work_root: Path) -> None:
    outcome, _lines = exec_py(
        """
        for name, size in [("a", 10), ("b", 10), ("big", 100), ("c", 10), ("d", 10)]:
            open(f"out/{name}", "wb").write(b"z" * size)
        """,
        work_root,
        max_artifacts=3,
        max_artifact_bytes=35,
    )
    assert sorted(outcome.artifacts) == ["a", "b", "c"]
    assert sorted(outcome.skipped_artifacts) == ["big", "d"]


def test_out_symlinks_are_never_followed(work_root: Path) -> None:
    outcome, _lines = exec_py(
        """
        import os
        os.symlink("/etc/passwd", "out/passwd")
        os.symlink("/etc", "out/etc")
        open("out/real.txt", "w").write("real")
        """,
        work_root,
    )
    assert outcome.exit_code == 0
    assert outcome.artifacts == {"real.txt": b"real"}


def test_out_replaced_by_a_symlink_yields_nothing(work_root: Path) -> None:
    outcome, _lines = exec_py(
        """
        import os
        os.rmdir("out")
        os.symlink("/etc", "out")
        """,
        work_root,
    )
    assert outcome.exit_code == 0
    assert outcome.artifacts == {}


@pytest.mark.parametrize(
    "name", ["../x", "/etc/passwd", "a/../../b", "", ".", "a\\..\\b", "a\x00b"]
)
def test_safe_relpath_refuses_unsafe_names(name: str) -> None:
    with pytest.raises(ExecError):
        safe_relpath(name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.py", "a.py"), ("./a/b.txt", "a/b.txt"), ("a//./b", "a/b"), ("dir/", "dir")],
)
def test_safe_relpath_normalises(name: str, expected: str) -> None:
    assert safe_relpath(name) == expected


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../b", ""])
def test_run_exec_refuses_unsafe_file_names(name: str, work_root: Path, tmp_path: Path) -> None:
    for code, inputs in [({name: b"x"}, {}), ({"main.py": b""}, {name: b"x"})]:
        with pytest.raises(ExecError):
            run(run_exec({"entry": "main.py"}, code, inputs, Lines(), work_root=str(work_root)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


@pytest.mark.parametrize(
    ("spec", "code", "inputs"),
    [
        ({"entry": "../main.py"}, {"main.py": b""}, {}),
        ({"entry": "missing.py"}, {"main.py": b""}, {}),
        ({"entry": "main.py"}, {"main.py": b""}, {"./main.py": b""}),
        ({"entry": "main.py"}, {"main.py": b"", "out/x": b""}, {}),
        ({"entry": "main.py", "net_policy": "sometimes"}, {"main.py": b""}, {}),
        ({"entry": "main.py", "timeout_s": -1}, {"main.py": b""}, {}),
        ({"entry": "main.py", "args": [1]}, {"main.py": b""}, {}),
        ({"entry": "main.py", "env": {"A": 1}}, {"main.py": b""}, {}),
        ({"entry": "main.py", "runtime": "no-such-program-zjobs"}, {"main.py": b""}, {}),
    ],
)
def test_run_exec_refuses_bad_specs(spec: dict, code: dict, inputs: dict, work_root: Path) -> None:
    with pytest.raises(ExecError):
        run(run_exec(spec, code, inputs, Lines(), work_root=str(work_root)))


# --------------------------------------------------------------------------- command and env


def test_runtime_and_args(work_root: Path) -> None:
    lines = Lines()
    outcome = run(
        run_exec(
            {"entry": "main.sh", "runtime": "sh", "args": ["a b", "c"]},
            {"main.sh": b'echo "$# [$1] [$2]"\n'},
            {},
            lines,
            work_root=str(work_root),
        )
    )
    assert outcome.exit_code == 0
    assert lines.of("stdout") == ["2 [a b] [c]"]


def test_env_is_minimal_plus_spec(work_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZJOBS_TEST_SECRET", "leak")
    _outcome, lines = exec_py(
        """
        import os
        print(os.environ.get("FOO"), os.environ.get("ZJOBS_TEST_SECRET"))
        print(os.environ.get("PYTHONUNBUFFERED"), "PATH" in os.environ)
        """,
        work_root,
        spec={"env": {"FOO": "bar"}},
    )
    assert lines.of("stdout") == ["bar None", "1 True"]


# --------------------------------------------------------------------------- stopping


def test_timeout_kills_child_and_grandchild(work_root: Path) -> None:
    marker = new_marker()
    started = time.monotonic()
    outcome, lines = exec_py(SPAWNER, work_root, spec={"args": [marker], "timeout_s": 2.0})
    assert lines.of("stdout") == ["ready"], lines.lines
    assert outcome.timed_out
    assert outcome.exit_code is None
    assert time.monotonic() - started < 10
    wait_until(lambda: not marked(marker), 1.0, message="every marked process gone")


def test_cancel_kills_child_and_grandchild(work_root: Path) -> None:
    marker = new_marker()

    async def scenario() -> None:
        lines = Lines()
        task = asyncio.create_task(
            run_exec(
                {"entry": "main.py", "args": [marker]},
                {"main.py": textwrap.dedent(SPAWNER).encode()},
                {},
                lines,
                work_root=str(work_root),
            )
        )
        await asyncio.wait_for(lines.ready.wait(), 10)
        # the program, its child, its grandchild (seen in /proc a moment after "ready" on a
        # loaded machine: CI once counted two)
        await asyncio.to_thread(wait_until, lambda: len(marked(marker)) == 3, 5.0,
                                message="the program, its child and its grandchild")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
    wait_until(lambda: not marked(marker), 1.0, message="every marked process gone")


def test_failing_output_callback_stops_the_program(work_root: Path) -> None:
    marker = new_marker()

    async def explode(stream: str, line: str) -> None:
        raise RuntimeError(f"cannot take {line!r}")

    with pytest.raises(RuntimeError, match="ready"):
        run(
            run_exec(
                {"entry": "main.py", "args": [marker]},
                {"main.py": textwrap.dedent(SPAWNER).encode()},
                {},
                explode,
                work_root=str(work_root),
            )
        )
    wait_until(lambda: not marked(marker), 1.0, message="every marked process gone")


BACKGROUND = """
    import subprocess, sys
    subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()", sys.argv[1]])
    print("bye")
"""


def test_background_child_holding_stdout_is_killed_when_the_entry_exits(
    work_root: Path,
) -> None:
    marker = new_marker()
    started = time.monotonic()
    outcome, lines = exec_py(BACKGROUND, work_root, spec={"args": [marker]})
    assert outcome.exit_code == 0
    assert not outcome.timed_out
    assert lines.of("stdout") == ["bye"]
    assert time.monotonic() - started < 3
    wait_until(lambda: not marked(marker), 1.0, message="the background child gone")


@pytest.mark.parametrize("box", ["namespaces", "subreaper"], indirect=True)
def test_a_daemon_that_left_the_session_dies_when_the_entry_exits(
    work_root: Path, box: ExecBox
) -> None:
    marker = new_marker()
    started = time.monotonic()
    outcome, lines = exec_py(DAEMONIZER, work_root, spec={"args": [marker, "exit"]}, box=box)
    assert outcome.exit_code == 0, lines.lines
    assert lines.of("stdout") == ["ready"]
    assert time.monotonic() - started < 3, "the daemon holding stdout must not hang the job"
    assert not marked(marker), "the daemon outlived the job"


@pytest.mark.parametrize("box", ["namespaces", "subreaper"], indirect=True)
def test_a_daemon_that_left_the_session_dies_at_the_timeout(
    work_root: Path, box: ExecBox
) -> None:
    marker = new_marker()
    started = time.monotonic()
    outcome, lines = exec_py(
        DAEMONIZER, work_root, spec={"args": [marker, "wait"], "timeout_s": 2.0}, box=box
    )
    assert outcome.timed_out, lines.lines
    assert lines.of("stdout") == ["ready"]
    # SIGTERM at 2 s, ignored; SIGKILL after the 0.5 s grace: gone within 1 s of the timeout
    assert not marked(marker), "the daemon outlived the timeout"
    assert time.monotonic() - started < 2.0 + 1.0


# --------------------------------------------------------------------------- network


CONNECT = """
    import socket, sys
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3).close()
        print("connected")
    except OSError as exc:
        print(f"failed: {exc}")
"""


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_network_is_inherited_by_default(work_root: Path, listening_port: int) -> None:
    _outcome, lines = exec_py(CONNECT, work_root, spec={"args": [str(listening_port)]})
    assert lines.of("stdout") == ["connected"]


def test_net_policy_none_cuts_the_network(work_root: Path, listening_port: int) -> None:
    spec = {"args": [str(listening_port)], "net_policy": "none"}
    if not net_isolation_available():
        with pytest.raises(ExecError, match="not available"):
            exec_py(CONNECT, work_root, spec=spec)
        return
    outcome, lines = exec_py(CONNECT, work_root, spec=spec)
    assert outcome.exit_code == 0
    out = lines.of("stdout")
    assert len(out) == 1 and out[0].startswith("failed"), lines.lines
