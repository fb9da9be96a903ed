"""The ``exec`` job runner: a program and its files, run in a subprocess inside its box.

A job's code files and input files are written into a fresh directory, next to an
empty ``out/`` directory; the entry runs there, stdout and stderr are streamed line by
line to a callback, and the files the program wrote under ``out/`` come back as
artifacts. The directory is always removed afterwards.

The program runs under ``exec_shim.py`` in the box ``exec_box.py`` decides: as a user of
its own where the worker is root (the directory is then handed to that user, inside a
parent it cannot list), with a scrubbed environment (the spec's ``env`` over ``PATH``,
``HOME`` (its directory), ``LANG`` and ``PYTHONUNBUFFERED``), in pid and mount namespaces
where the host allows. Stopping it (timeout, cancel, or its entry having exited) kills
every descendant, wherever it moved: the shim gets SIGTERM, passes it on to all, and
SIGKILLs what is left after a short grace; the runner SIGKILLs the shim's group if it has
not ended a moment later. A program's output pipes, once every descendant is dead, reach
their end at once; reading them is abandoned after ``_DRAIN_TIMEOUT_S`` all the same.

``net_policy: "none"`` adds a fresh network namespace and a seccomp filter refusing Unix
sockets; where the host cannot give a network namespace, the job is refused with
``ExecError``, never run with network.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import marshal
import math
import os
import secrets
import shlex
import shutil
import signal
import stat
import sys
import tempfile
import time
from asyncio.subprocess import Process
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from io import FileIO
from pathlib import Path

from zjobs.worker.exec_box import (
    ExecBox,
    ExecError,
    Launch,
    exec_box,
    net_isolation_available,
    python_dirs,
)

__all__ = [
    "ExecBox",
    "ExecError",
    "ExecOutcome",
    "OutputCallback",
    "net_isolation_available",
    "run_exec",
    "safe_relpath",
]

OutputCallback = Callable[[str, str], Awaitable[None]]

OUT_DIR = "out"
SHIM = str(Path(__file__).with_name("exec_shim.py"))
_KILL_GRACE_S = 0.5  # the shim's SIGTERM-to-SIGKILL grace
_SHIM_MARGIN_S = 1.0  # after which the runner SIGKILLs a shim that has not ended
_DRAIN_TIMEOUT_S = 1.0
_READ_CHUNK_BYTES = 64 * 1024
_PATH = "/usr/local/bin:/usr/bin:/bin"
_PYTHON_RUNTIMES = frozenset({"python", "python3"})
_NET_POLICIES = frozenset({"inherit", "none"})


@dataclass(slots=True)
class ExecOutcome:
    """What a finished (or timed-out) program left behind.

    ``exit_code`` is None when the runner killed the program (timeout); a
    program that died of a signal of its own gets the negative signal number,
    as in ``subprocess``. ``skipped_artifacts`` lists the ``out/`` files left
    out because of the count or size limits, or because their name is unsafe.
    """

    exit_code: int | None
    timed_out: bool
    artifacts: dict[str, bytes] = field(default_factory=dict)
    skipped_artifacts: list[str] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class _Plan:
    """A validated spec: everything needed to start the program."""

    command: tuple[str, ...]
    env: dict[str, str]  # the spec's; the runner adds the minimal rest (`_child_env`)
    timeout_s: float | None
    isolate_net: bool


# --------------------------------------------------------------------------- names


def safe_relpath(name: str) -> str:
    """Normalise an upload or artifact name to a safe relative posix path.

    ``.`` components and repeated slashes are dropped (``./a//b`` -> ``a/b``).
    Refused with ``ExecError``: non-strings, empty names, NUL bytes, any
    backslash (a Windows separator in disguise), absolute paths, ``..``
    components, and names that are not valid UTF-8 (they could not travel in
    a msgpack string). The result never leaves the directory it is joined to,
    as long as that directory holds no symlinks (the runner's never does when
    files are written).
    """
    if not isinstance(name, str) or not name:
        raise ExecError(f"invalid file name {name!r}: empty or not a string")
    if "\x00" in name or "\\" in name:
        raise ExecError(f"invalid file name {name!r}: NUL or backslash")
    if name.startswith("/"):
        raise ExecError(f"invalid file name {name!r}: absolute path")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ExecError(f"invalid file name {name!r}: not UTF-8") from exc
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ExecError(f"invalid file name {name!r}: '..' component")
    if not parts:
        raise ExecError(f"invalid file name {name!r}: names no file")
    return "/".join(parts)


# --------------------------------------------------------------------------- spec


def _str_list(value: object, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ExecError(f"spec {what} must be a list of strings, got {value!r}")
    return list(value)


def _str_dict(value: object, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ExecError(f"spec {what} must map strings to strings, got {value!r}")
    return dict(value)


def _timeout_s(value: object) -> float | None:
    if value is None:
        return None
    if (not isinstance(value, int | float) or isinstance(value, bool)
            or not math.isfinite(value) or value <= 0):
        raise ExecError(f"spec timeout_s must be a positive number or null, got {value!r}")
    return float(value)


def _isolate_net(value: object) -> bool:
    if value is None:
        return False
    if not isinstance(value, str) or value not in _NET_POLICIES:
        raise ExecError(f"spec net_policy must be 'inherit', 'none' or null, got {value!r}")
    return value == "none"


def _entry_argv(entry: object, runtime: object, files: Mapping[str, bytes]) -> list[str]:
    """The command line without the network prefix.

    Under the Python runtime (the default) the entry must be one of the job's
    files; under another runtime it may be anything that runtime accepts, and
    a name of one of the job's files is normalised.
    """
    if not isinstance(entry, str) or not entry:
        raise ExecError(f"spec entry must be a non-empty string, got {entry!r}")
    if runtime is None or runtime in _PYTHON_RUNTIMES:
        path = safe_relpath(entry)
        if path not in files:
            raise ExecError(f"spec entry {entry!r} is not one of the job's files")
        return [sys.executable, f"./{path}" if path.startswith("-") else path]
    if not isinstance(runtime, str) or not shlex.split(runtime):
        raise ExecError(f"spec runtime must be a non-empty command string, got {runtime!r}")
    with contextlib.suppress(ExecError):
        path = safe_relpath(entry)
        entry = path if path in files else entry
    return [*shlex.split(runtime), entry]


def _child_env(extra: Mapping[str, str], home: Path) -> dict[str, str]:
    """Nothing of the worker's environment but its LANG: a minimal one, then the spec's."""
    env = {"PATH": _PATH, "HOME": str(home), "LANG": os.environ.get("LANG", "C.UTF-8"),
           "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


def _plan(spec: Mapping[str, object], files: Mapping[str, bytes]) -> _Plan:
    if not isinstance(spec, Mapping):
        raise ExecError(f"spec must be a mapping, got {type(spec).__name__}")
    argv = _entry_argv(spec.get("entry"), spec.get("runtime"), files)
    argv += _str_list(spec.get("args"), "args")
    return _Plan(
        command=tuple(argv),
        env=_str_dict(spec.get("env"), "env"),
        timeout_s=_timeout_s(spec.get("timeout_s")),
        isolate_net=_isolate_net(spec.get("net_policy")),
    )


# --------------------------------------------------------------------------- files


def _merge_files(
    code_files: Mapping[str, bytes], input_files: Mapping[str, bytes]
) -> dict[str, bytes]:
    """Both file sets under their sanitised names; a name given twice is refused."""
    files: dict[str, bytes] = {}
    for source in (code_files, input_files):
        for name, data in source.items():
            path = safe_relpath(name)
            if path in files:
                raise ExecError(f"file name {name!r} is given twice")
            if path.split("/", 1)[0] == OUT_DIR:
                raise ExecError(f"file name {name!r} is under the reserved '{OUT_DIR}/' directory")
            if not isinstance(data, bytes | bytearray | memoryview):
                raise ExecError(f"file {name!r} must be bytes, got {type(data).__name__}")
            files[path] = bytes(data)
    return files


def _write_files(workdir: Path, files: Mapping[str, bytes]) -> None:
    for path, data in files.items():
        target = workdir / path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as handle:
                handle.write(data)
        except OSError as exc:
            raise ExecError(f"cannot write file {path!r}: {exc}") from exc
    (workdir / OUT_DIR).mkdir()


def _chmod_dir(name: str, dir_fd: int) -> None:
    """Give the owner full access to a directory, never to what a symlink points at.

    Linux has no ``lchmod``: the entry is opened with ``O_PATH | O_NOFOLLOW``
    (a symlink opens as itself), checked to be a directory, and changed
    through its ``/proc/self/fd`` link.
    """
    with contextlib.suppress(OSError):
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                os.chmod(f"/proc/self/fd/{fd}", 0o700)
        finally:
            os.close(fd)


def _remove_tree(path: Path) -> None:
    """Remove the work directory even where the program took write permission away."""
    if os.geteuid() != 0:  # root ignores directory permissions
        for _root, dirs, _files, dir_fd in os.fwalk(path, follow_symlinks=False):
            for name in dirs:
                _chmod_dir(name, dir_fd)
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- output


def _cut(buf: bytearray, size: int) -> int:
    """Where to cut an over-long line: at ``size``, moved back off a UTF-8 continuation byte."""
    cut = size
    while cut > max(size - 3, 1) and cut < len(buf) and (buf[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


def _next_line(buf: bytearray, max_line_bytes: int) -> bytes | None:
    """Take one line (without its newline) or one over-long chunk off ``buf``; None: need more."""
    newline = buf.find(b"\n", 0, max_line_bytes + 2)
    if newline != -1:
        end = newline - 1 if newline > 0 and buf[newline - 1] == 0x0D else newline
        if end <= max_line_bytes:
            line = bytes(buf[:end])
            del buf[: newline + 1]
            return line
    if len(buf) < max_line_bytes + 2 and newline == -1:
        return None
    cut = _cut(buf, max_line_bytes)
    chunk = bytes(buf[:cut])
    del buf[:cut]
    return chunk


async def _pump(
    reader: asyncio.StreamReader, stream: str, on_output: OutputCallback, max_line_bytes: int
) -> None:
    """Read one pipe to EOF, handing each line (or over-long chunk) to ``on_output`` in order."""
    buf = bytearray()
    while chunk := await reader.read(_READ_CHUNK_BYTES):
        buf += chunk
        while (line := _next_line(buf, max_line_bytes)) is not None:
            await on_output(stream, line.decode("utf-8", "replace"))
    while buf:
        cut = _cut(buf, max_line_bytes) if len(buf) > max_line_bytes else len(buf)
        await on_output(stream, bytes(buf[:cut]).decode("utf-8", "replace"))
        del buf[:cut]


# --------------------------------------------------------------------------- process


@dataclass(slots=True)
class _Pipe:
    """The runner's read end of one of the program's output pipes."""

    reader: asyncio.StreamReader
    transport: asyncio.ReadTransport


async def _read_end(file: FileIO) -> _Pipe:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_READ_CHUNK_BYTES, loop=loop)
    transport, _protocol = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), file
    )
    return _Pipe(reader, transport)


async def _connect(files: list[FileIO]) -> list[_Pipe]:
    """Attach the read ends to the event loop; on failure leave nothing open."""
    pipes: list[_Pipe] = []
    try:
        for file in files:
            pipes.append(await _read_end(file))
    except BaseException:
        for pipe in pipes:
            pipe.transport.close()
        for file in files[len(pipes) :]:
            file.close()
        raise
    return pipes


async def _start(launch: Launch, fds: _ShimFds) -> Process:
    command = (*launch.prefix, sys.executable, "-I", "-S", SHIM, str(fds.status))
    try:
        return await asyncio.create_subprocess_exec(
            *command,
            stdin=fds.orders,
            stdout=fds.stdout,
            stderr=fds.stderr,
            cwd="/",
            env={"PATH": _PATH},  # the job's own environment travels in its orders
            start_new_session=True,
            pass_fds=(fds.status,),
        )
    except OSError as exc:
        raise ExecError(f"cannot start {command[0]!r}: {exc}") from exc


@dataclass(slots=True)
class _ShimFds:
    """The shim's ends of its four pipes: orders in, status out, the program's output."""

    orders: int
    status: int
    stdout: int
    stderr: int


@dataclass(slots=True)
class _Shim:
    """A started shim: its process, our ends of its output pipes and of its two channels."""

    proc: Process
    pipes: list[_Pipe]
    orders_fd: int
    status_fd: int


async def _spawn(launch: Launch) -> _Shim:
    """Start the shim in a new session, its stdout and stderr on pipes of our own.

    Our own pipes rather than ``PIPE``: on Python 3.11 ``Process.wait()`` also
    waits for ``PIPE`` pipes to close, which a background child holding stdout
    would stall; and owning the read ends lets us close them, even while a
    descendant that escaped still holds the write ends.
    """
    (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
    (orders_r, orders_w), (status_r, status_w) = os.pipe(), os.pipe()
    files = [os.fdopen(out_r, "rb", buffering=0), os.fdopen(err_r, "rb", buffering=0)]
    try:
        proc = await _start(launch, _ShimFds(orders_r, status_w, out_w, err_w))
    except BaseException:
        for fd in (orders_w, status_r):
            os.close(fd)
        for file in files:
            file.close()
        raise
    finally:
        for fd in (out_w, err_w, orders_r, status_w):
            os.close(fd)
    try:
        return _Shim(proc, await _connect(files), orders_w, status_r)
    except BaseException:
        _signal_group(proc.pid, signal.SIGKILL)
        for fd in (orders_w, status_r):
            os.close(fd)
        raise


def _write_orders(fd: int, orders: dict) -> None:
    """Hand the shim its orders and close the pipe; run in a thread, which owns ``fd``.

    A thread, since a large environment may fill the pipe; the owner, so that a cancelled
    runner never closes an fd this thread may still write to.
    """
    try:
        data = memoryview(marshal.dumps(orders))
        with contextlib.suppress(BrokenPipeError):  # the shim died: it reports nothing then
            while data:
                data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def _read_status(fd: int) -> dict | None:
    """The shim's report, or None if it ended (was killed) before writing one."""
    os.set_blocking(fd, False)
    chunks = []
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, _READ_CHUNK_BYTES):
            chunks.append(chunk)
    try:
        report = marshal.loads(b"".join(chunks))
    except (EOFError, ValueError, TypeError):
        return None
    return report if isinstance(report, dict) else None


def _exit_code(report: dict | None, returncode: int | None) -> int:
    """The program's exit code from the shim's report (negative: the signal that killed it)."""
    if report is None:
        raise ExecError(f"the exec sandbox ended without a report (status {returncode})")
    if "error" in report:
        raise ExecError(str(report["error"]))
    return -int(report["signal"]) if "signal" in report else int(report["exit"])


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def _stop_group(proc: Process) -> None:
    """SIGTERM the shim's group; SIGKILL it if it has not ended after its grace and a margin.

    The shim passes SIGTERM on to every descendant and SIGKILLs them after the grace. The
    SIGKILL is also sent when the shim already exited; it runs even if this coroutine is
    cancelled. Killing the shim (pid 1 of the job's namespace) kills the namespace.
    """
    try:
        if proc.returncode is None:
            _signal_group(proc.pid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), _KILL_GRACE_S + _SHIM_MARGIN_S)
    finally:
        _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


async def _supervise(
    waiter: asyncio.Task[int], pumps: list[asyncio.Task[None]], deadline: float | None
) -> bool:
    """Wait for the program to exit; True if the deadline passed first.

    A pump that fails (the output callback raised) ends the wait with its error.
    """
    pending: set[asyncio.Task] = {waiter, *pumps}
    while not waiter.done():
        timeout_s = None if deadline is None else max(0.0, deadline - time.monotonic())
        done, pending = await asyncio.wait(
            pending, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            return True
        for task in done:
            task.result()
    return False


async def _drain(pumps: list[asyncio.Task[None]]) -> None:
    """Let the pumps read what is left in the pipes, up to ``_DRAIN_TIMEOUT_S``.

    The group is dead by now, so only a descendant that left it can keep the
    pipes open that long; its further output is then dropped.
    """
    done, _pending = await asyncio.wait(pumps, timeout=_DRAIN_TIMEOUT_S)
    for task in done:
        task.result()


async def _cancel_all(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _run_process(
    launch: Launch, orders: dict, timeout_s: float | None, on_output: OutputCallback,
    max_line_bytes: int,
) -> tuple[int | None, bool]:
    """Run the program to its end, its deadline or a cancel; return (exit code, timed out)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    shim = await _spawn(launch)
    streams = zip(("stdout", "stderr"), shim.pipes, strict=True)
    pumps = [
        asyncio.create_task(_pump(pipe.reader, name, on_output, max_line_bytes))
        for name, pipe in streams
    ]
    waiter = asyncio.create_task(shim.proc.wait())
    try:
        await asyncio.to_thread(_write_orders, shim.orders_fd, orders)
        timed_out = await _supervise(waiter, pumps, deadline)
        await _stop_group(shim.proc)
        await _drain(pumps)
        report = _read_status(shim.status_fd)
    finally:
        try:
            await _stop_group(shim.proc)
        finally:
            await _cancel_all([*pumps, waiter])
            for pipe in shim.pipes:
                pipe.transport.close()
            os.close(shim.status_fd)
    return (None if timed_out else _exit_code(report, shim.proc.returncode)), timed_out


# --------------------------------------------------------------------------- artifacts


def _walk_out(out_dir: Path) -> Iterator[tuple[str, str, int]]:
    """Yield (relative path, file name, directory fd) for every entry under ``out/``.

    ``os.fwalk`` without following symlinks: a symlinked directory (or an
    ``out`` replaced by a symlink) is never entered.
    """
    for root, dirs, names, dir_fd in os.fwalk(out_dir, follow_symlinks=False):
        dirs.sort()
        rel_root = os.path.relpath(root, out_dir)
        for name in sorted(names):
            rel = name if rel_root == "." else f"{rel_root}/{name}"
            yield rel, name, dir_fd


def _read_regular(name: str, dir_fd: int, limit: int, owner: int | None) -> bytes | None:
    """The file's bytes if it is a regular file (never through a symlink) of at most ``limit``.

    Returns None for anything else, and for a file not owned by ``owner`` (when given): the
    runner may read as root what a job of another user hard-linked into ``out/``. Raises
    ``_TooLarge`` past the limit.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError:
        return None  # a symlink (ELOOP), vanished, unreadable
    with open(fd, "rb", closefd=True) as handle:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or owner is not None and st.st_uid != owner:
            return None
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise _TooLarge
    return data


class _TooLarge(Exception):
    """An artifact over the remaining byte budget."""


def _display_name(rel: str) -> str:
    return os.fsencode(rel).decode("utf-8", "replace")


def _collect_artifacts(
    out_dir: Path, max_artifacts: int, max_artifact_bytes: int, owner: int | None
) -> tuple[dict[str, bytes], list[str]]:
    """Regular files under ``out/`` (owned by ``owner`` if given) within the count and
    total-size limits; skipped names."""
    artifacts: dict[str, bytes] = {}
    skipped: list[str] = []
    budget = max_artifact_bytes
    for rel, name, dir_fd in _walk_out(out_dir):
        try:
            key = safe_relpath(rel)
            data = _read_regular(name, dir_fd, budget, owner)
        except (ExecError, _TooLarge):
            skipped.append(_display_name(rel))
            continue
        if data is None:
            continue
        if len(artifacts) >= max_artifacts:
            skipped.append(key)
            continue
        artifacts[key] = data
        budget -= len(data)
    return artifacts, skipped


# --------------------------------------------------------------------------- the job's directory


def _make_workdir(work_root: str | None, box: ExecBox) -> tuple[Path, Path]:
    """(the directory to remove afterwards, the job's working directory).

    For a job of another user: a root-owned parent it may pass through but not list
    (0711), holding a directory of a random name that the job owns, so that another job of
    the same user cannot find it.
    """
    top = Path(tempfile.mkdtemp(prefix="zjobs-exec-", dir=work_root))
    if box.uid is None:
        return top, top
    os.chmod(top, 0o711)
    workdir = top / secrets.token_hex(8)
    workdir.mkdir(mode=0o700)
    return top, workdir


def _hand_over(workdir: Path, box: ExecBox) -> None:
    """Give the job's user its directory and the files written into it."""
    if box.uid is None or box.gid is None:  # (both or neither)
        return
    for root, dirs, names, dir_fd in os.fwalk(workdir, follow_symlinks=False):
        os.chown(root, box.uid, box.gid)
        for name in [*dirs, *names]:
            os.chown(name, box.uid, box.gid, dir_fd=dir_fd, follow_symlinks=False)


def _orders(plan: _Plan, box: ExecBox, launch: Launch, workdir: Path) -> dict:
    """What the shim is told: the program, its user, what it may see (see exec_shim.py)."""
    needed = [str(workdir)]
    if plan.command[0] == sys.executable:
        needed += python_dirs()
    return {
        "argv": list(plan.command), "env": _child_env(plan.env, workdir), "cwd": str(workdir),
        "uid": box.uid, "gid": box.gid, "private_mounts": launch.private_mounts,
        "expose": box.covers(needed, launch.private_mounts), "hide": list(box.hidden),
        "deny_sockets": plan.isolate_net, "grace_s": _KILL_GRACE_S,
    }


@functools.cache
def default_box() -> ExecBox:
    """The box of a caller that names none: ``nobody`` as root, else the caller's own user."""
    return exec_box()


# --------------------------------------------------------------------------- entry point


async def run_exec(
    spec: dict,
    code_files: dict[str, bytes],
    input_files: dict[str, bytes],
    on_output: OutputCallback,
    *,
    box: ExecBox | None = None,
    work_root: str | None = None,
    max_line_bytes: int = 64 * 1024,
    max_artifact_bytes: int = 64 * 1024 * 1024,
    max_artifacts: int = 1000,
) -> ExecOutcome:
    """Run an ``exec`` job in ``box`` and return its exit code, timeout flag and artifacts.

    Raises ``ExecError`` when the spec or the files cannot be run (before anything runs),
    or when the program cannot be started. A cancel kills every process of the job,
    removes the directory and re-raises ``CancelledError``; an exception from
    ``on_output`` does the same and propagates.
    """
    if max_line_bytes < 1:
        raise ValueError("max_line_bytes must be at least 1")
    files = _merge_files(code_files, input_files)
    plan = _plan(spec, files)
    box = box or default_box()
    # probed once, in a thread; refuses net_policy "none" before anything is written
    launch = await asyncio.to_thread(box.launch, plan.isolate_net)
    top, workdir = _make_workdir(work_root, box)
    try:
        _write_files(workdir, files)
        _hand_over(workdir, box)
        orders = _orders(plan, box, launch, workdir)
        exit_code, timed_out = await _run_process(
            launch, orders, plan.timeout_s, on_output, max_line_bytes
        )
        artifacts, skipped = _collect_artifacts(
            workdir / OUT_DIR, max_artifacts, max_artifact_bytes, box.uid
        )
        return ExecOutcome(exit_code, timed_out, artifacts, skipped)
    finally:
        _remove_tree(top)
