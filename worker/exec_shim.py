"""The supervisor inside an exec job's box: it starts the program and outlives every descendant.

The worker's exec runner starts this file as ``python -I -S exec_shim.py STATUS_FD``, as pid 1
of a fresh pid and mount namespace where the host allows (``unshare``), else as a child
subreaper. It must stay importable without site-packages: the standard library only, and
``-I`` so that nothing in the job's environment (``PYTHONPATH``, ``LD_PRELOAD``...) reaches
it, since it may run as root.

Its orders come as one ``marshal``-ed dict on stdin (the same interpreter writes and reads
it; ``json`` would cost the start-up ``re`` and ``enum``):

    argv, env, cwd    the program, its (already scrubbed) environment and directory
    uid, gid          the user to switch to before exec; None: stay
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
and the grace, and when the runner goes away (its end of the status pipe closes, even if
it was SIGKILLed). Last it writes one marshalled dict to STATUS_FD: ``{"exit": n}``,
``{"signal": n}`` or ``{"error": "what went wrong"}`` (the program never started).
"""

from __future__ import annotations

import _signal as signal  # the module under `signal`, without its enums' import time
import ctypes
import marshal
import os
import select
import struct
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
        try:
            os.kill(-1, signum)
        except ProcessLookupError:
            pass
        return
    for pid in _descendants():
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


class _Stop:
    """Stopping: asked (SIGTERM, or the runner gone) and the grace before SIGKILL."""

    asked = False
    grace_s = 0.5

    @classmethod
    def ask(cls, _signum: int = 0, _frame: object = None) -> None:
        """SIGTERM to every descendant, SIGKILL to all when the grace is over (SIGALRM)."""
        if not cls.asked:
            cls.asked = True
            _signal_all(signal.SIGTERM)
            signal.setitimer(signal.ITIMER_REAL, cls.grace_s)

    @staticmethod
    def kill(_signum: int = 0, _frame: object = None) -> None:
        _signal_all(signal.SIGKILL)


def _wait_for(program: int, status_fd: int) -> int:
    """Reap whatever ends until the program does; its wait status.

    Meanwhile the status pipe is watched: its read end closing (POLLERR on our write end)
    means the runner died, even of SIGKILL, and the job is stopped as on SIGTERM, so that
    no job outlives its worker. Signals (SIGCHLD, SIGTERM, SIGALRM) wake the poll through
    the wakeup fd; their handlers have run by then.
    """
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)  # to have it wake the poll
    poller = select.poll()
    poller.register(wake_r, select.POLLIN)
    poller.register(status_fd, 0)  # POLLERR, POLLHUP: reported whatever the mask
    while True:
        ended = _reap()
        if program in ended:
            return ended[program]
        for fd, _events in poller.poll():
            if fd == status_fd:
                poller.unregister(status_fd)
                _Stop.ask()
            else:
                _drain(wake_r)


def _reap() -> dict[int, int]:
    """{pid: wait status} of every child that has ended, without blocking."""
    ended: dict[int, int] = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended[pid] = status


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


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


def _start(orders: dict) -> int:
    """Fork and exec the program; its pid. OSError says why it could not start.

    By hand rather than with ``subprocess``, whose imports would double the shim's start-up
    time: the child reports a failure before exec on a close-on-exec pipe, so an empty
    read means the exec happened.
    """
    # Mount only as pid 1: the runner unshares the pid and the mount namespace together, so
    # a shim that is not pid 1 would be changing the host's mounts.
    if orders.get("private_mounts") and os.getpid() == 1:
        _expose(orders.get("expose") or {})
        _hide(orders.get("hide") or [])
    program = _socket_filter() if orders.get("deny_sockets") else b""
    errors_r, errors_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # never returns: exec, or report and exit
        try:
            os.close(errors_r)
            _become(orders, program, errors_w)
        except BaseException as exc:  # noqa: BLE001 - whatever it is, the parent must hear it
            os.write(errors_w, (str(exc) or type(exc).__name__).encode("utf-8", "replace"))
        finally:
            os._exit(127)
    os.close(errors_w)
    with open(errors_r, "rb") as errors:
        failure = errors.read()
    if failure:
        os.waitpid(pid, 0)
        raise OSError(failure.decode("utf-8", "replace"))
    return pid


def _become(orders: dict, program: bytes, errors_fd: int) -> None:
    """In the forked child: the program's group, stdin, directory, user, confinement, exec."""
    os.setpgid(0, 0)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.closerange(3, errors_fd)  # nothing of ours reaches the program but stdout and stderr;
    os.closerange(errors_fd + 1, 1 << 20)  # the errors pipe closes itself at exec
    os.chdir(orders["cwd"])
    if orders.get("uid") is not None:
        uid, gid = orders["uid"], orders["gid"]
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    try:
        _confine(bool(orders.get("deny_sockets")), program)
    except OSError as exc:
        raise OSError(f"cannot confine the program: {exc}") from None
    argv = orders["argv"]
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores them; programs expect
        signal.signal(signum, signal.SIG_DFL)        # the defaults
    try:
        os.execve(_which(argv[0], orders["env"].get("PATH", os.defpath)), argv, orders["env"])
    except OSError as exc:
        raise OSError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None


def _which(name: str, path: str) -> str:
    """``name`` looked up in ``path`` as execvp would, without ``os.execvpe``: that imports
    ``warnings``, which the job's user may not be able to read once the child is that user.
    """
    if "/" in name:
        return name
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise OSError(2, os.strerror(2))  # ENOENT, as execvp says it


def _status(wait_status: int) -> dict:
    if os.WIFSIGNALED(wait_status):
        return {"signal": os.WTERMSIG(wait_status)}
    return {"exit": os.waitstatus_to_exitcode(wait_status)}


def main(status_fd: int) -> int:
    os.set_inheritable(status_fd, False)
    orders = marshal.loads(sys.stdin.buffer.read())
    _Stop.grace_s = float(orders.get("grace_s", 0.5))
    signal.signal(signal.SIGTERM, _Stop.ask)
    signal.signal(signal.SIGALRM, _Stop.kill)
    if os.getpid() != 1:
        _check(_LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")
    try:
        pid = _start(orders)
    except OSError as exc:
        report = {"error": exc.strerror or str(exc)}
    else:
        report = _status(_wait_for(pid, status_fd))
    _kill_the_rest()
    try:
        os.write(status_fd, marshal.dumps(report))
    except BrokenPipeError:
        pass  # the runner is gone
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
