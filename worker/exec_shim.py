"""The supervisor inside an exec job's box: it starts the program and outlives every descendant.

The worker's exec runner starts this file as ``python -I -S exec_shim.py STATUS_FD``, as pid 1
of a fresh pid and mount namespace where the host allows (``unshare``), else as a child
subreaper. It must stay importable without site-packages: the standard library only, and
``-I`` so that nothing in the job's environment (``PYTHONPATH``, ``LD_PRELOAD``...) reaches
it, since it may run as root.

Its orders come as one JSON object on stdin:

    argv, env, cwd    the program, its (already scrubbed) environment and directory
    uid, gid          the user to switch to before exec; null: stay
    private_mounts    true when the shim is pid 1 of a private pid and mount namespace:
                      only then does it change mounts (``expose``, ``hide``)
    expose            {cover: [directories]}: directories the user could not reach, made
                      reachable (see ``_expose``)
    hide              directories covered with an empty read-only tmpfs
    deny_sockets      a seccomp filter: ``socket()`` only for AF_INET, AF_INET6 and
                      AF_NETLINK (no Unix sockets), and no io_uring
    grace_s           SIGTERM to all, then this long, then SIGKILL to all

The program runs in a process group of its own, stdin ``/dev/null``, stdout and stderr
inherited, with ``no_new_privs`` (a setuid binary gains nothing). The shim reaps every
process that becomes its child. When the program exits, every descendant left is killed
with SIGKILL, wherever it moved (``setsid``, double fork): as pid 1 with ``kill(-1)``,
else by walking ``/proc`` from the subreaper. On SIGTERM the same happens after SIGTERM
and the grace. Last it writes one JSON object to STATUS_FD: ``{"exit": n}``,
``{"signal": n}`` or ``{"error": "what went wrong"}`` (the program never started).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import struct
import subprocess
import sys
import time

_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.prctl.argtypes = [ctypes.c_int, *[ctypes.c_ulong] * 4]
_LIBC.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]

PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_BIND, MS_REC = 0x1000, 0x4000

# seccomp: struct seccomp_data is {int nr; u32 arch; u64 ip; u64 args[6]}
_ARCHES = {  # machine: (AUDIT_ARCH_*, socket's syscall number, x32 bit or 0)
    "x86_64": (0xC000003E, 41, 0x40000000),
    "aarch64": (0xC00000B7, 198, 0),
}
_IO_URING_SETUP = 425  # the same on every architecture: asm-generic's number
_ALLOWED_FAMILIES = (2, 10, 16)  # AF_INET, AF_INET6, AF_NETLINK
_RET_ALLOW, _RET_KILL = 0x7FFF0000, 0x80000000
_RET_EPERM = 0x00050000 | 1
_LD_W_ABS, _JEQ, _JGE, _RET = 0x20, 0x15, 0x35, 0x06


class _Stop:
    """SIGTERM's state: asked to stop, and when the grace ends."""

    asked = False


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


# --------------------------------------------------------------------------- confinement


def _socket_filter() -> bytes:
    """A seccomp BPF program: socket() for internet and netlink families only, no io_uring.

    A foreign architecture's system call (a 32-bit one on x86_64, x32) kills the process:
    its numbers would dodge the checks. Jumps name their target; `_assemble` makes them
    the relative offsets BPF wants.
    """
    machine = os.uname().machine
    if machine not in _ARCHES:
        raise OSError(f"no seccomp filter for the {machine} architecture")
    arch, socket_nr, x32 = _ARCHES[machine]
    return _assemble([
        (_LD_W_ABS, 0, 0, 4),                                    # the architecture
        (_JEQ, "number", 0, arch),
        (_RET, 0, 0, _RET_KILL),
        ("number", _LD_W_ABS, 0, 0, 0),                          # the system call
        *([(_JGE, "deny", 0, x32)] if x32 else []),
        (_JEQ, "deny", 0, _IO_URING_SETUP),
        (_JEQ, 0, "allow", socket_nr),
        (_LD_W_ABS, 0, 0, 16),                                   # socket's family
        *[(_JEQ, "allow", 0, family) for family in _ALLOWED_FAMILIES],
        ("deny", _RET, 0, 0, _RET_EPERM),
        ("allow", _RET, 0, 0, _RET_ALLOW),
    ])


def _assemble(program: list[tuple]) -> bytes:
    """Pack BPF instructions; a leading string labels one, a string jump names its label."""
    labels = {insn[0]: i for i, insn in enumerate(program) if isinstance(insn[0], str)}
    code = [insn[1:] if isinstance(insn[0], str) else insn for insn in program]

    def offset(i: int, target: int | str) -> int:
        return labels[target] - i - 1 if isinstance(target, str) else target

    return b"".join(struct.pack("HBBI", op, offset(i, jt), offset(i, jf), k)
                    for i, (op, jt, jf, k) in enumerate(code))


def _confine(deny_sockets: bool, program: bytes) -> None:
    """In the program's process after fork, before exec: no new privileges, maybe no sockets."""
    _check(_LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    if deny_sockets:
        buffer = ctypes.create_string_buffer(program)
        fprog = ctypes.create_string_buffer(
            struct.pack("HxxxxxxP", len(program) // 8, ctypes.addressof(buffer)))
        _check(_LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0),
               "seccomp")


def _hide(paths: list[str]) -> None:
    """Cover each directory with an empty read-only tmpfs (in our private mount namespace)."""
    for path in paths:
        if os.path.isdir(path):
            flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
            _check(_LIBC.mount(b"tmpfs", os.fsencode(path), b"tmpfs", flags, b"mode=0,size=4k"),
                   f"cannot hide {path}")


def _expose(covers: dict[str, list[str]]) -> None:
    """Make directories the job's user cannot reach reachable, and nothing else beside them.

    Each cover is the highest directory on the way that the user may not search (``/root``
    holding the interpreter, say): it is covered with a fresh tmpfs, in which the paths to
    the given directories are made again and the real directories bound onto them. Their
    own permissions still apply; what else the cover held stays out of sight.
    """
    for cover, dirs in covers.items():
        fds = [(path, os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
               for path in sorted(dirs)]
        _check(_LIBC.mount(b"tmpfs", os.fsencode(cover), b"tmpfs", MS_NOSUID | MS_NODEV,
                           b"mode=0755,size=64k"), f"cannot cover {cover}")
        for path, fd in fds:
            os.makedirs(path, 0o755, exist_ok=True)
            _check(_LIBC.mount(f"/proc/self/fd/{fd}".encode(), os.fsencode(path), None,
                               MS_BIND | MS_REC, None), f"cannot bind {path}")
            os.close(fd)


# --------------------------------------------------------------------------- descendants


def _descendants() -> list[int]:
    """Every process below us, from one read of /proc (a subreaper's orphans are ours)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    found, todo = [], [os.getpid()]
    while todo:
        for pid in children.get(todo.pop(), ()):
            found.append(pid)
            todo.append(pid)
    return found


def _signal_all(signum: int) -> None:
    if os.getpid() == 1:  # pid 1 of our namespace: kill(-1) reaches all of it but us
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signum)
        return
    for pid in _descendants():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _on_term(grace_s: float) -> None:
    def term(_signum: int, _frame: object) -> None:
        if not _Stop.asked:
            _Stop.asked = True
            _signal_all(signal.SIGTERM)
            signal.setitimer(signal.ITIMER_REAL, grace_s)

    def alarm(_signum: int, _frame: object) -> None:
        _signal_all(signal.SIGKILL)

    signal.signal(signal.SIGTERM, term)
    signal.signal(signal.SIGALRM, alarm)


def _wait_for(program: int) -> int:
    """Reap whatever ends until the program does; its wait status."""
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == program:
            return status


def _kill_the_rest() -> None:
    """SIGKILL every descendant until none is left (an orphan may arrive between rounds)."""
    while True:
        _signal_all(signal.SIGKILL)
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.002)  # noqa - a killed process is not reapable at once


# --------------------------------------------------------------------------- main


def _start(orders: dict) -> subprocess.Popen:
    # Mount only as pid 1: the runner unshares the pid and the mount namespace together, so
    # a shim that is not pid 1 would be changing the host's mounts.
    if orders.get("private_mounts") and os.getpid() == 1:
        _expose(orders.get("expose") or {})
        _hide(orders.get("hide") or [])
    program = _socket_filter() if orders.get("deny_sockets") else b""
    uid = orders.get("uid")
    try:
        return subprocess.Popen(
            orders["argv"], cwd=orders["cwd"], env=orders["env"], stdin=subprocess.DEVNULL,
            close_fds=True, process_group=0, user=uid, group=orders.get("gid"),
            extra_groups=[] if uid is not None else None,
            preexec_fn=lambda: _confine(bool(orders.get("deny_sockets")), program),
        )
    except subprocess.SubprocessError as exc:
        raise OSError(f"cannot confine the program (no_new_privs or seccomp refused): {exc}"
                      ) from None
    except OSError as exc:
        raise OSError(f"cannot start {orders['argv'][0]!r}: {exc.strerror or exc}") from None


def _status(wait_status: int) -> dict:
    if os.WIFSIGNALED(wait_status):
        return {"signal": os.WTERMSIG(wait_status)}
    return {"exit": os.waitstatus_to_exitcode(wait_status)}


def main(status_fd: int) -> int:
    os.set_inheritable(status_fd, False)
    orders = json.loads(sys.stdin.buffer.read())
    _on_term(float(orders.get("grace_s", 0.5)))
    if os.getpid() != 1:
        _check(_LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")
    try:
        proc = _start(orders)
    except OSError as exc:
        report = {"error": exc.strerror or str(exc)}
    else:
        report = _status(_wait_for(proc.pid))
    _kill_the_rest()
    os.write(status_fd, json.dumps(report).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
