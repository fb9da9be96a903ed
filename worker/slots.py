"""The worker's sync slots: its slot processes started, watched, replaced and stopped.

Each slot (worker/slot.py) is a process and a bus peer of its own; the worker only keeps
the right number of them alive. A slot that ends is started again under the same name:
at once if it ended itself to stop a stuck job (it reported the job first), after a
backoff if it keeps dying young (so a broken task module does not spin). A slot whose
board shows its watch thread frozen (C code holding the GIL) is killed, and the slot that
replaces it reports the job it could not finish, if that job had to stop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from typing import Any

import structlog

from zjobs.worker.slot import EXIT_REPLACED, SlotBoard, slot_main

log = structlog.get_logger(__name__)

YOUNG_S = 5.0      # a slot that dies sooner than this after its start died young
MAX_BACKOFF_S = 30.0


class _Process:
    __slots__ = ("process", "board", "started", "failures")

    def __init__(self, process: Any, board: SlotBoard, started: float, failures: int) -> None:
        self.process = process
        self.board = board
        self.started = started
        self.failures = failures  # deaths in a row soon after their start


class SlotSupervisor:
    """`count` slot processes of the worker configured by `config`."""

    def __init__(self, config: Any, count: int) -> None:
        self.config = config
        self.count = count
        self._mp = multiprocessing.get_context("spawn")
        self._slots: dict[int, _Process] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._pending: set[asyncio.TimerHandle] = set()
        # when `check` last ran, and when this process last resumed after not running for a
        # whole window itself (its process group stopped, the host suspended)
        self._checked_at = self._resumed_at = time.monotonic()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for index in range(self.count):
            self._spawn(index, None, 0)

    def pids(self) -> list[int]:
        return [s.process.pid for s in self._slots.values() if s.process.pid is not None]

    def _spawn(self, index: int, inherited: tuple[str, int, str] | None, failures: int) -> None:
        if self._closing:
            return
        board = SlotBoard(self._mp)
        process = self._mp.Process(target=slot_main, args=(self.config, index, board, inherited),
                                   daemon=True, name=f"zjobs-slot-{index}")
        process.start()
        self._slots[index] = _Process(process, board, time.monotonic(), failures)
        assert self._loop is not None
        self._loop.add_reader(process.sentinel, self._ended, index, process)

    def _ended(self, index: int, process: Any) -> None:
        """A slot process ended: start its successor (unless the worker is stopping)."""
        assert self._loop is not None
        self._loop.remove_reader(process.sentinel)
        process.join(0)
        slot = self._slots.get(index)
        if slot is None or slot.process is not process or self._closing:
            return
        code = process.exitcode
        young = time.monotonic() - slot.started < YOUNG_S and code != EXIT_REPLACED
        failures = slot.failures + 1 if young else 0
        delay_s = min(2.0 ** failures / 2, MAX_BACKOFF_S) if young else 0.0
        level = log.info if code == EXIT_REPLACED else log.warning
        level("slot.ended", slot=index, exit_code=code, restart_in_s=delay_s)
        handle = self._loop.call_later(delay_s, self._respawn, index, failures)
        self._pending.add(handle)

    def _respawn(self, index: int, failures: int) -> None:
        self._pending = {h for h in self._pending if not h.cancelled()}
        self._spawn(index, None, failures)

    def check(self, frozen_after_s: float) -> None:
        """Kill a slot whose watch thread has not ticked for `frozen_after_s` (its code holds
        the GIL in C); its successor reports the job it had to stop. Time this process did
        not run does not count: a stopped process group stops the slots too, and after a
        SIGCONT each slot gets a whole window to tick again before it is judged."""
        now = time.monotonic()
        if now - self._checked_at > frozen_after_s:  # we were stopped too: so were they, maybe
            self._resumed_at = now
        self._checked_at = now
        for index, slot in list(self._slots.items()):
            alive_at = slot.board.alive_at
            if alive_at == 0 or now - max(alive_at, self._resumed_at) <= frozen_after_s \
                    or not slot.process.is_alive():
                continue
            unfinished = slot.board.unfinished(now)
            log.warning("slot.frozen", slot=index, pid=slot.process.pid,
                        job_id=unfinished[0] if unfinished else None)
            self._kill(slot)
            assert self._loop is not None
            self._loop.remove_reader(slot.process.sentinel)
            slot.process.join(1)
            self._spawn(index, unfinished, 0)

    @staticmethod
    def _kill(slot: _Process) -> None:
        try:
            os.kill(slot.process.pid, signal.SIGKILL)
        except (ProcessLookupError, TypeError):
            pass

    async def stop(self, grace_s: float) -> None:
        """Ask every slot to stop (they hand back their buffer and finish their job within
        `grace_s`, then hand it back too), and wait; kill what is left after that."""
        self._closing = True
        for handle in self._pending:
            handle.cancel()
        for slot in self._slots.values():
            if slot.process.is_alive():
                slot.process.terminate()
        deadline = time.monotonic() + grace_s + 2.0
        while any(s.process.is_alive() for s in self._slots.values()) \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for slot in self._slots.values():
            if self._loop is not None:
                try:
                    self._loop.remove_reader(slot.process.sentinel)
                except (OSError, ValueError):
                    pass
            if slot.process.is_alive():
                self._kill(slot)
            slot.process.join(1)
        self._slots.clear()
