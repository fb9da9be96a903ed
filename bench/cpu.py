"""CPU seconds spent by each process of a benchmark, read from /proc, per job.

A wall-clock rate on a shared machine swings by half between runs; the CPU each process
spends per job does not depend on what else runs, so it says where the time goes:
the broker, the workers (with every process they started: pool processes, sync slots),
and the client (this process).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # after "pid (comm) ": field 3 onwards


def group_cpu_s(pgids: Iterable[int]) -> float:
    """CPU seconds of every live process in these process groups, plus the children their
    leaders have already reaped (a pool process replaced mid-run)."""
    wanted = set(pgids)
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is None or int(fields[2]) not in wanted:  # field 5: pgrp
            continue
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        if int(entry.name) in wanted:  # a leader: add its reaped children
            ticks += int(fields[13]) + int(fields[14])
        total += ticks * _TICK_S
    return total


class CpuMeter:
    """CPU per job by role between `start()` and `stop(jobs)`.

    `roles` maps a role ("broker", "workers") to the process-group ids whose CPU it sums;
    the client is this process.
    """

    def __init__(self, roles: dict[str, list[int]]) -> None:
        self.roles = roles
        self._start: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        sample = {role: group_cpu_s(pgids) for role, pgids in self.roles.items()}
        sample["client"] = time.process_time()
        return sample

    def start(self) -> CpuMeter:
        self._start = self._sample()
        return self

    def stop(self, jobs: int) -> dict[str, float]:
        """µs of CPU per job for each role and in total."""
        end = self._sample()
        per_job = {role: round((end[role] - self._start[role]) * 1e6 / max(jobs, 1), 1)
                   for role in end}
        per_job["total"] = round(sum(per_job.values()), 1)
        return per_job
