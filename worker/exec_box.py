"""The box an exec job runs in: which user, which namespaces, what it may see. Decided once.

A worker started as root runs every exec job as another user: ``--exec-user NAME``, else
``nobody``. A worker that is not root cannot switch users; its jobs run as itself, and it
says so once in its log. ``--exec-user`` naming anyone else than a non-root worker itself
stops the worker at start, since it could not be honoured.

Every job runs under ``exec_shim.py``, started through util-linux ``unshare`` with a pid,
a mount and an IPC namespace of its own where the host allows (as root; else in a user
namespace too): the shim is pid 1 there, so everything the program starts, even a double-forked
``setsid`` daemon, dies with it, and ``/proc`` shows only the job's processes. Where no
namespace can be had, the shim is a child subreaper and kills whatever is left below it.
``net_policy: "none"`` adds a network namespace and a seccomp filter refusing Unix sockets;
a host without a network namespace refuses such a job rather than run it with network.

In the mount namespace the worker's secrets (its CURVE key directory) are covered with an
empty tmpfs, and directories the job's user could not reach but needs (the interpreter
under ``/root``, a private work root) are made reachable without the rest of what hides
them. ``docs/exec-sandbox.md`` says what this isolates and what it does not.
"""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog

from zjobs.broker.wire.errors import StartError

__all__ = ["DEFAULT_EXEC_USER", "ExecBox", "ExecError", "exec_box", "net_isolation_available"]

log = structlog.get_logger(__name__)

DEFAULT_EXEC_USER = "nobody"
_PROBE_TIMEOUT_S = 10.0
_NAMESPACES = ("--pid", "--fork", "--kill-child", "--mount", "--mount-proc", "--ipc")
_AS_USER = ("--user", "--map-root-user")


class ExecError(Exception):
    """A spec or file set that cannot be run (bad name, missing entry, no net isolation...)."""


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start one job's shim: the command prefix and whether it gets its own mounts."""

    prefix: tuple[str, ...]
    private_mounts: bool


@dataclass(frozen=True, slots=True)
class ExecBox:
    """As whom exec jobs run and what they may see.

    ``uid``/``gid`` None: the worker's own user. ``namespaces`` False skips the pid and
    mount namespaces (the subreaper alone kills descendants). ``hidden`` directories are
    covered in the job's mount namespace.
    """

    user: str
    uid: int | None = None
    gid: int | None = None
    namespaces: bool = True
    hidden: tuple[str, ...] = ()

    def launch(self, isolate_net: bool) -> Launch:
        """The ``unshare`` prefix for a job; ExecError if its network cannot be cut here."""
        candidates = _candidates(isolate_net) if self.namespaces else []
        candidates += _net_only() if isolate_net else []
        reason = "no namespace asked for"
        for flags in candidates:
            prefix, reason = _probe(flags)
            if prefix is not None:
                return Launch(prefix, "--mount" in flags)
        if isolate_net:
            raise ExecError(f"net_policy 'none' is not available on this host: {reason}")
        return Launch((), False)

    def covers(self, dirs: Iterable[str], private_mounts: bool) -> dict[str, list[str]]:
        """For the directories the job's user cannot reach: {highest blocking dir: dirs}.

        Without a private mount namespace to open them in, ExecError names the first one.
        """
        if self.uid is None:
            return {}
        covers: dict[str, list[str]] = {}
        for path in dirs:
            blocking = blocking_ancestor(path, self.uid, self.gid)
            if blocking is None:
                continue
            if not private_mounts:
                raise ExecError(f"user {self.user} cannot reach {path}: {blocking} is not "
                                f"searchable by it; make it o+x, or run the worker where "
                                f"unshare can give jobs a mount namespace")
            covers.setdefault(blocking, []).append(path)
        return covers


def exec_box(exec_user: str | None = None, hidden: Iterable[str] = ()) -> ExecBox:
    """The box for this process: as root, ``exec_user`` (default ``nobody``); else ourselves.

    Raises StartError for a user that does not exist, or that a non-root worker cannot
    become.
    """
    hidden = tuple(str(Path(h).resolve()) for h in hidden)
    if os.geteuid() == 0:
        name = exec_user or DEFAULT_EXEC_USER
        entry = _user(name)
        return ExecBox(name, entry.pw_uid, entry.pw_gid, hidden=hidden)
    if exec_user is not None and _user(exec_user).pw_uid != os.geteuid():
        raise StartError(f"--exec-user {exec_user} needs a worker running as root (switching "
                         "users takes root); run the worker as root, or leave --exec-user out "
                         "and exec jobs run as the worker's own user")
    return ExecBox(_name(os.geteuid()), hidden=hidden)


def announce(box: ExecBox) -> None:
    """Say once, at start, as whom and in what exec jobs will run."""
    boxed = box.launch(False).prefix != ()
    if box.uid is None:
        log.warning("exec.same_user", user=box.user, namespaces=boxed,
                    hint="exec jobs run as the worker's own user and can read what it can; "
                         "start the worker as root to give them a user of their own")
    else:
        log.info("exec.box", user=box.user, uid=box.uid, namespaces=boxed)


def net_isolation_available() -> bool:
    """Whether ``net_policy: "none"`` can be honoured on this host (probed once, cached)."""
    return any(_probe(flags)[0] is not None for flags in [*_candidates(True), *_net_only()])


# --------------------------------------------------------------------------- users


def _user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise StartError(f"--exec-user {name}: no such user on this host; create it "
                         f"(useradd --system {name}) or name another") from None


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def blocking_ancestor(path: str, uid: int, gid: int | None) -> str | None:
    """The highest directory from / to ``path`` (included) that ``uid`` may not search."""
    current = Path("/")
    for part in Path(path).resolve().parts[1:]:
        current = current / part
        st = current.stat()
        if st.st_uid == uid:
            searchable = st.st_mode & 0o100
        elif st.st_gid == gid:
            searchable = st.st_mode & 0o010
        else:
            searchable = st.st_mode & 0o001
        if not searchable:
            return str(current)
    return None


# --------------------------------------------------------------------------- namespaces


def _candidates(isolate_net: bool) -> list[tuple[str, ...]]:
    """The ``unshare`` flags to try, best first: pid + mount (+ net), as root or in a userns."""
    flags = (*_NAMESPACES, "--net") if isolate_net else _NAMESPACES
    return [flags] if os.geteuid() == 0 else [(*_AS_USER, *flags)]


def _net_only() -> list[tuple[str, ...]]:
    return [("--net",)] if os.geteuid() == 0 else [("--net", "--map-root-user")]


@functools.cache
def _probe(flags: tuple[str, ...]) -> tuple[tuple[str, ...] | None, str]:
    """(``unshare`` prefix, "") if ``unshare FLAGS true`` works here, else (None, why not).

    Tried once per process and set of flags: it runs the thing rather than guessing from
    the uid or the capabilities.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return None, "the util-linux 'unshare' program is not installed"
    prefix = (unshare, *flags)
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=_PROBE_TIMEOUT_S,
                               check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{' '.join(prefix)} true: {exc}"
    if probe.returncode != 0:
        stderr = probe.stderr.decode("utf-8", "replace").strip()
        return None, f"{' '.join(prefix)} true exited {probe.returncode}: {stderr}"
    return prefix, ""


def python_dirs() -> list[str]:
    """The directories the worker's interpreter runs from (its installation, its venv)."""
    return sorted({str(Path(p).resolve()) for p in (sys.base_prefix, sys.prefix)})
