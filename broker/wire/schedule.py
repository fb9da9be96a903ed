"""A schedule as the store keeps it and the wire shows it: the record, its slots (cron in
UTC or every N seconds), its row. The book that fires schedules is `core.schedules`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from zjobs.broker.wire import protocol as p

JOB_KEYS = ("task", "args", "kwargs", "queue", "priority", "timeout_s", "max_retries")
# the row of the store's `schedules` table, in its column order
COLUMNS = (*JOB_KEYS, "cron", "every_s", "next_run_at", "last_run_at", "created_at")


@dataclass(slots=True)
class Schedule:
    name: str
    job: dict[str, Any]            # JOB_KEYS: what each firing submits
    cron: str | None
    every_s: float | None
    created_at: float
    next_run_at: float = 0.0
    last_run_at: float | None = None
    version: int = field(default=0, compare=False)  # heap entries of older versions are stale

    def slot_after(self, after: float) -> float:
        """The first slot strictly after `after`."""
        if self.every_s is not None:
            return (math.floor(after / self.every_s) + 1) * self.every_s
        start = datetime.fromtimestamp(math.floor(after), UTC)
        return float(croniter(self.cron, start).get_next(float))

    def latest_slot(self, now: float) -> float:
        """The last slot not after `now`."""
        if self.every_s is not None:
            return math.floor(now / self.every_s) * self.every_s
        start = datetime.fromtimestamp(math.floor(now) + 1, UTC)
        return float(croniter(self.cron, start).get_prev(float))

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, **self.job, "cron": self.cron, "every_s": self.every_s,
                "next_run_at": self.next_run_at, "last_run_at": self.last_run_at,
                "created_at": self.created_at}

    def row(self) -> tuple:
        job = self.job
        return (self.name, job["task"], p.pack(job["args"]), p.pack(job["kwargs"]),
                job["queue"], job["priority"], job["timeout_s"], job["max_retries"],
                self.cron, self.every_s, self.next_run_at, self.last_run_at, self.created_at)


def from_row(row: tuple) -> Schedule:
    name, *values = row
    data = dict(zip(COLUMNS, values, strict=True))
    job = {key: data[key] for key in JOB_KEYS}
    job["args"], job["kwargs"] = p.unpack(bytes(job["args"])), p.unpack(bytes(job["kwargs"]))
    return Schedule(name, job, data["cron"], data["every_s"], data["created_at"],
                    data["next_run_at"], data["last_run_at"])
