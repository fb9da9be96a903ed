"""No orphans: children that die with their parent, and a parent that reaps every descendant.

Linux gives two tools for this. `PR_SET_PDEATHSIG` makes the kernel signal a
child when its parent dies, even by SIGKILL, so a killed `zjobs up` (or a
killed worker) leaves no process holding a port. `PR_SET_CHILD_SUBREAPER`
makes orphaned descendants (a worker's pool processes and resource tracker)
become children of the supervisor, so it can wait until every one has gone
before it exits. Elsewhere both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _load_prctl() -> object | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Loaded once, up front: `die_with_parent` runs between fork and exec, where loading a
# library could deadlock on a lock another thread of the parent held.
_PRCTL = _load_prctl()


def _prctl(option: int, value: int) -> bool:
    return _PRCTL is not None and _PRCTL(option, value) == 0  # type: ignore[operator]


def die_with_parent(sig: int, parent_pid: int | None) -> None:
    """Ask for `sig` when the parent dies; exit at once if it died before the request took."""
    _prctl(_PR_SET_PDEATHSIG, sig)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def become_subreaper() -> bool:
    """Orphaned descendants become this process's children, to be reaped here."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def processes() -> list[tuple[int, str, int, int, int]]:
    """(pid, state, ppid, process group, session) of every process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found.append((int(entry.name), fields[0], int(fields[1]), int(fields[2]),
                      int(fields[3])))
    return found


def children_of(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is `pid`."""
    return [p for p, state, ppid, _, _ in processes() if ppid == pid and state != "Z"]
