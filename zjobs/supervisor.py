"""The supervisor of `zjobs up`: start children, restart the ones that die, stop them all.

A child that exits without being asked is started again after a backoff
(1 s doubling to 30 s, back to 1 s once a run lasted 60 s). A child that
fails within a few seconds of starting five times in a row (a port in use,
a bad `--tasks`) ends the supervisor with one line saying why, taken from
the last line the child wrote to stderr.

A `held` child starts only once the `oneshot` children have all exited with
status 0: `zjobs up --tasks` holds its workers while a throwaway process
imports the task modules, so a module that does not import ends `up` with
its one line at once, not after five restarts of every worker.

The supervisor is a Linux child subreaper: a worker's pool processes and
resource tracker, orphaned when their worker dies, become its children, so
`run()` returns only once every descendant has exited. Children get SIGKILL
when the supervisor dies (`PR_SET_PDEATHSIG`), even by SIGKILL, so nothing
is left holding a port. Each child runs in its own process group: a Ctrl-C
in the terminal reaches the supervisor alone, which then stops the workers
and the API first and the broker last, as a SIGTERM does.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from zjobs.broker.wire.errors import StartError, ZJobsError
from zjobs.broker.wire.orphans import become_subreaper, children_of, die_with_parent
from zjobs.broker.wire.settings import default

log = structlog.get_logger(__name__)

POLL_S = 0.1


@dataclass(slots=True)
class Backoff:
    """When to restart a child that exited after running `ran_s` seconds; None: give up."""

    first_s: float = 1.0
    cap_s: float = 30.0
    reset_after_s: float = 60.0
    quick_s: float = 5.0
    max_quick_failures: int = 5
    delay_s: float = 1.0
    quick_failures: int = 0

    def next_delay(self, ran_s: float) -> float | None:
        if ran_s >= self.reset_after_s:
            self.delay_s = self.first_s
        self.quick_failures = self.quick_failures + 1 if ran_s < self.quick_s else 0
        if self.quick_failures >= self.max_quick_failures:
            return None
        delay, self.delay_s = self.delay_s, min(self.delay_s * 2, self.cap_s)
        return delay


@dataclass(slots=True)
class Child:
    """One supervised role: how to start it, and its current process if any."""

    name: str
    argv: list[str]
    stop_first: bool = True          # workers and API stop before the broker
    stop_grace_s: float = 8.0
    held: bool = False               # started once every oneshot child has succeeded
    secrets: tuple[str, ...] = ()    # environment variables only this child is given
    oneshot: bool = False            # a check: exit 0 releases the held, else ends it all
    backoff: Backoff = field(default_factory=Backoff)
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    last_words: deque = field(default_factory=lambda: deque(maxlen=5))
    relay: threading.Thread | None = None  # copies its stderr, keeping the last words


class GaveUp(ZJobsError):
    """A child kept failing right after it started."""


def describe_status(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


class Supervisor:
    def __init__(self, children: list[Child], env: dict[str, str],
                 restart: str = default("restart"),
                 on_tick: Callable[[], None] | None = None) -> None:
        self.children = children
        self.env = env
        self.restart = restart
        self.on_tick = on_tick
        self._stop = False
        self._by_pid: dict[int, Child] = {}

    def stop(self, *_: object) -> None:
        self._stop = True

    def _environment(self, child: Child) -> dict[str, str]:
        """The environment without the secrets of other children (the API's token reaches
        no worker, whose jobs could read it)."""
        others = {name for c in self.children if c is not child for name in c.secrets}
        return {k: v for k, v in self.env.items() if k not in others or k in child.secrets}

    @property
    def holding(self) -> bool:
        """Whether some children wait for a check still running."""
        return any(c.held for c in self.children)

    # ------------------------------------------------------------ processes

    def _start(self, child: Child) -> None:
        parent = os.getpid()
        proc = subprocess.Popen(
            child.argv, env=self._environment(child), stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            process_group=0, preexec_fn=lambda: die_with_parent(signal.SIGKILL, parent),
        )
        child.proc, child.started_at, child.restart_at = proc, time.monotonic(), None
        self._by_pid[proc.pid] = child
        child.relay = threading.Thread(
            target=_relay, args=(proc.stderr, child.last_words, not child.oneshot), daemon=True,
            name=f"stderr-{child.name}")
        child.relay.start()

    def _reap(self) -> list[tuple[Child, int]]:
        """Collect every exited descendant; the supervised ones are returned."""
        exited: list[tuple[Child, int]] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return exited
            if pid == 0:
                return exited
            child = self._by_pid.pop(pid, None)
            if child is not None and child.proc is not None:
                child.proc.returncode = os.waitstatus_to_exitcode(status)
                child.proc = None
                exited.append((child, status))

    def _on_exit(self, child: Child, status: int) -> None:
        if child.oneshot:
            self._checked(child, status)
            return
        ran_s = time.monotonic() - child.started_at
        if self.restart == "never" or (self.restart == "on-failure" and status == 0):
            log.error("zjobs.child_exited", child=child.name, status=describe_status(status))
            raise GaveUp(f"{child.name} exited ({describe_status(status)}); "
                         "not restarted (--restart " + self.restart + ")")
        delay = child.backoff.next_delay(ran_s)
        if delay is None:
            words = _last_error(child.last_words)
            raise GaveUp(f"{child.name} failed {child.backoff.max_quick_failures} times in a row "
                         f"within {child.backoff.quick_s:g} s of starting "
                         f"({describe_status(status)})" + (f": {words}" if words else ""))
        log.warning("zjobs.child_exited", child=child.name, status=describe_status(status),
                    ran_s=round(ran_s, 1), restart_in_s=delay)
        child.restart_at = time.monotonic() + delay

    def _checked(self, check: Child, status: int) -> None:
        """A oneshot child ended: the held children start once every check has passed."""
        if status != 0:
            if check.relay is not None:
                check.relay.join(5)  # its last words, for the error
            raise StartError(_last_error(check.last_words)
                             or f"{check.name} failed ({describe_status(status)})")
        self.children.remove(check)
        if not any(c.oneshot for c in self.children):
            for child in self.children:
                if child.held:
                    child.held = False
                    self._start(child)

    # ------------------------------------------------------------ loop

    def run(self) -> None:
        """Supervise until stopped; raises GaveUp. Always stops every process it started."""
        become_subreaper()
        try:
            for child in self.children:
                if not child.held:
                    self._start(child)
            while not self._stop:
                self._turn()
        finally:
            self._stop_all()

    def _turn(self) -> None:
        for child, status in self._reap():
            if not self._stop:
                self._on_exit(child, status)
        now = time.monotonic()
        for child in self.children:
            if child.proc is None and child.restart_at is not None and now >= child.restart_at \
                    and not self._stop:
                log.info("zjobs.child_restarted", child=child.name)
                self._start(child)
        if self.on_tick is not None:
            self.on_tick()
        time.sleep(POLL_S)

    def _stop_all(self) -> None:
        """SIGTERM workers and API, then the broker; SIGKILL what outlives its grace; reap all."""
        for first in (True, False):
            group = [c for c in self.children if c.stop_first is first and c.proc is not None]
            for child in group:
                if child.proc is not None:
                    _signal(child.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + max((c.stop_grace_s for c in group), default=0)
            self._wait_for(functools.partial(_all_ended, group), deadline)
            for child in group:
                if child.proc is not None:
                    log.warning("zjobs.child_killed", child=child.name)
                    _signal(child.proc.pid, signal.SIGKILL)
            self._wait_for(functools.partial(_all_ended, group), time.monotonic() + 5)
        self._reap_descendants()
        log.info("zjobs.stopped")

    def _reap_descendants(self) -> None:
        """Orphans that became ours: ask them to go, then insist, until none is left."""
        me = os.getpid()
        for sig, grace_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            for pid in children_of(me):
                _signal(pid, sig)
            if self._wait_for(lambda: not children_of(me), time.monotonic() + grace_s):
                break
        self._reap()

    def _wait_for(self, condition: Callable[[], bool], deadline: float) -> bool:
        while True:
            self._reap()
            if condition():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def _all_ended(group: list[Child]) -> bool:
    return all(child.proc is None for child in group)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _relay(stream: object, tail: deque, copy: bool = True) -> None:
    """Copy a child's stderr to ours line by line (unless not `copy`), keeping its last lines
    for errors."""
    out = sys.stderr.buffer
    for line in iter(stream.readline, b""):  # type: ignore[attr-defined]
        tail.append(line.decode(errors="replace").rstrip())
        if not copy:
            continue
        try:
            out.write(line)
            out.flush()
        except (OSError, ValueError):
            pass
    stream.close()  # type: ignore[attr-defined]


def _last_error(lines: deque) -> str:
    """The child's own `error:` line if it printed one, else its last non-empty line."""
    for line in reversed(lines):
        if line.startswith("error: "):
            return line.removeprefix("error: ")
    return next((line for line in reversed(lines) if line.strip()), "")
