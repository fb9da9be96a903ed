"""The ``exec`` job runner: a program and its files, run in a subprocess.

A job's code files and input files are written into a fresh temporary
directory, next to an empty ``out/`` directory; the entry runs there in its own
session (so its own process group), stdout and stderr are streamed line by line
to a callback, and the files the program wrote under ``out/`` come back as
artifacts. The directory is always removed afterwards.

Stopping a program (timeout, cancel, or simply its entry having exited) means
signalling its whole process group: SIGTERM, a short grace, then SIGKILL. That
reaches every child and grandchild that stayed in the group, including ones
that ignore SIGTERM or hold their own pipes. A descendant that deliberately
left the group (``setsid``, ``setpgid``, a double-forking daemon) is out of its
reach: a job that must not escape needs a container or a cgroup around the
worker. Such an escapee may also keep the output pipes open; reading them is
then abandoned after ``_DRAIN_TIMEOUT_S``.

``net_policy: "none"`` runs the program in a fresh network namespace through
util-linux ``unshare`` (``-n`` as root, else ``--net --map-root-user``); where
the host does not allow that, the job is refused with ``ExecError``, never run
with network.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from asyncio.subprocess import Process
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "ExecError",
    "ExecOutcome",
    "OutputCallback",
    "net_isolation_available",
    "run_exec",
    "safe_relpath",
]

OutputCallback = Callable[[str, str], Awaitable[None]]

OUT_DIR = "out"
_KILL_GRACE_S = 0.5
_DRAIN_TIMEOUT_S = 5.0
_READ_CHUNK_BYTES = 64 * 1024
_NET_PROBE_TIMEOUT_S = 10.0
_INHERITED_ENV = ("PATH", "HOME", "LANG")
_PYTHON_RUNTIMES = frozenset({"python", "python3"})
_NET_POLICIES = frozenset({"inherit", "none"})


class ExecError(Exception):
    """A spec or file set that cannot be run (bad name, missing entry, no net isolation...)."""


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
    env: dict[str, str]
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


# --------------------------------------------------------------------------- network isolation


@functools.cache
def _net_probe() -> tuple[tuple[str, ...] | None, str]:
    """Find an ``unshare`` invocation that really gets a new network namespace.

    Returns (command prefix, "") or (None, reason). Tried once per process: it
    runs ``unshare ... true`` rather than guessing from uid or capabilities.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return None, "the util-linux 'unshare' program is not installed"
    candidates = [("--net", "--map-root-user")]
    if os.geteuid() == 0:
        candidates.insert(0, ("-n",))
    reason = ""
    for flags in candidates:
        prefix = (unshare, *flags)
        try:
            probe = subprocess.run(
                [*prefix, "true"], capture_output=True, timeout=_NET_PROBE_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = f"{' '.join(prefix)} true: {exc}"
            continue
        if probe.returncode == 0:
            return prefix, ""
        stderr = probe.stderr.decode("utf-8", "replace").strip()
        reason = f"{' '.join(prefix)} true exited {probe.returncode}: {stderr}"
    return None, reason


def net_isolation_available() -> bool:
    """Whether ``net_policy: "none"`` can be honoured on this host (probed once, cached)."""
    return _net_probe()[0] is not None


def _net_prefix() -> tuple[str, ...]:
    prefix, reason = _net_probe()
    if prefix is None:
        raise ExecError(f"net_policy 'none' is not available on this host: {reason}")
    return prefix


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
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
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


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {key: os.environ[key] for key in _INHERITED_ENV if key in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _plan(spec: Mapping[str, object], files: Mapping[str, bytes]) -> _Plan:
    if not isinstance(spec, Mapping):
        raise ExecError(f"spec must be a mapping, got {type(spec).__name__}")
    argv = _entry_argv(spec.get("entry"), spec.get("runtime"), files)
    argv += _str_list(spec.get("args"), "args")
    return _Plan(
        command=tuple(argv),
        env=_child_env(_str_dict(spec.get("env"), "env")),
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


async def _read_end(file: BinaryIO) -> _Pipe:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_READ_CHUNK_BYTES, loop=loop)
    transport, _protocol = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), file
    )
    return _Pipe(reader, transport)


async def _connect(files: list[BinaryIO]) -> list[_Pipe]:
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


async def _start(plan: _Plan, workdir: Path, stdout_fd: int, stderr_fd: int) -> Process:
    command = (*_net_prefix(), *plan.command) if plan.isolate_net else plan.command
    try:
        return await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout_fd,
            stderr=stderr_fd,
            cwd=workdir,
            env=plan.env,
            start_new_session=True,
        )
    except OSError as exc:
        raise ExecError(f"cannot start {command[0]!r}: {exc}") from exc


async def _spawn(plan: _Plan, workdir: Path) -> tuple[Process, list[_Pipe]]:
    """Start the program in a new session, its stdout and stderr on pipes of our own.

    Our own pipes rather than ``PIPE``: on Python 3.11 ``Process.wait()`` also
    waits for ``PIPE`` pipes to close, which a background child holding stdout
    would stall; and owning the read ends lets us close them, even while a
    descendant that left the group still holds the write ends.
    """
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    files = [os.fdopen(out_r, "rb", buffering=0), os.fdopen(err_r, "rb", buffering=0)]
    try:
        proc = await _start(plan, workdir, out_w, err_w)
    except BaseException:
        for file in files:
            file.close()
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    try:
        return proc, await _connect(files)
    except BaseException:
        _signal_group(proc.pid, signal.SIGKILL)
        raise


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def _stop_group(proc: Process) -> None:
    """SIGTERM the program's group, give the program a grace, then SIGKILL the group.

    The SIGKILL is also sent when the program already exited, for the
    descendants it left behind; it runs even if this coroutine is cancelled.
    """
    try:
        if proc.returncode is None:
            _signal_group(proc.pid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), _KILL_GRACE_S)
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
    plan: _Plan, workdir: Path, on_output: OutputCallback, max_line_bytes: int
) -> tuple[int | None, bool]:
    """Run the program to its end, its deadline or a cancel; return (exit code, timed out)."""
    deadline = None if plan.timeout_s is None else time.monotonic() + plan.timeout_s
    proc, pipes = await _spawn(plan, workdir)
    streams = zip(("stdout", "stderr"), pipes, strict=True)
    pumps = [
        asyncio.create_task(_pump(pipe.reader, name, on_output, max_line_bytes))
        for name, pipe in streams
    ]
    waiter = asyncio.create_task(proc.wait())
    try:
        timed_out = await _supervise(waiter, pumps, deadline)
        await _stop_group(proc)
        await _drain(pumps)
    finally:
        try:
            await _stop_group(proc)
        finally:
            await _cancel_all([*pumps, waiter])
            for pipe in pipes:
                pipe.transport.close()
    return (None if timed_out else proc.returncode), timed_out


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


def _read_regular(name: str, dir_fd: int, limit: int) -> bytes | None:
    """The file's bytes if it is a regular file (never through a symlink) of at most ``limit``.

    Returns None for anything else; raises ``_TooLarge`` past the limit.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError:
        return None  # a symlink (ELOOP), vanished, unreadable
    with open(fd, "rb", closefd=True) as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
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
    out_dir: Path, max_artifacts: int, max_artifact_bytes: int
) -> tuple[dict[str, bytes], list[str]]:
    """Regular files under ``out/`` within the count and total-size limits; skipped names."""
    artifacts: dict[str, bytes] = {}
    skipped: list[str] = []
    budget = max_artifact_bytes
    for rel, name, dir_fd in _walk_out(out_dir):
        try:
            key = safe_relpath(rel)
            data = _read_regular(name, dir_fd, budget)
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


# --------------------------------------------------------------------------- entry point


async def run_exec(
    spec: dict,
    code_files: dict[str, bytes],
    input_files: dict[str, bytes],
    on_output: OutputCallback,
    *,
    work_root: str | None = None,
    max_line_bytes: int = 64 * 1024,
    max_artifact_bytes: int = 64 * 1024 * 1024,
    max_artifacts: int = 1000,
) -> ExecOutcome:
    """Run an ``exec`` job and return its exit code, timeout flag and ``out/`` artifacts.

    Raises ``ExecError`` before anything runs when the spec or the files
    cannot be run. A cancel kills the process group, removes the directory
    and re-raises ``CancelledError``; an exception from ``on_output`` does the
    same and propagates.
    """
    if max_line_bytes < 1:
        raise ValueError("max_line_bytes must be at least 1")
    files = _merge_files(code_files, input_files)
    plan = _plan(spec, files)
    if plan.isolate_net:
        await asyncio.to_thread(_net_prefix)  # refuse before anything is written or started
    workdir = Path(tempfile.mkdtemp(prefix="zjobs-exec-", dir=work_root))
    try:
        _write_files(workdir, files)
        exit_code, timed_out = await _run_process(plan, workdir, on_output, max_line_bytes)
        artifacts, skipped = _collect_artifacts(
            workdir / OUT_DIR, max_artifacts, max_artifact_bytes
        )
        return ExecOutcome(exit_code, timed_out, artifacts, skipped)
    finally:
        _remove_tree(workdir)
