"""The prefetch window: how many jobs a worker holds beyond those it runs. Pure.

The policy of every peer that asks the broker for a window (docs/protocol.md, 6.6): the
Python worker, its sync slots, and the Majordomo adapter for each Majordomo worker.

Credit equal to the slots would make every job wait a round trip to the broker before it
starts, and every broker turn, worker read and client read handle one or two jobs. A
window lets a worker keep the next jobs at hand. But a window is the prefetch trap Celery
warns about when tasks run long: jobs sit in one worker's buffer while another worker idles.
So the window is sized in time, not in jobs: it holds about `BUFFER_S` of work at the
current pace (many no-ops, a few 10 ms tasks, none of 100 ms ones), and it closes (and the
buffer goes back to the broker) as soon as the buffer has not moved for `STALL_S`, i.e. a
task runs long.
"""

from __future__ import annotations

BUFFER_S = 0.05   # work a full window holds, at the pace jobs have been finishing
STALL_S = 0.25    # a buffer that has not moved this long goes back to the broker
_SMOOTHING = 0.2  # weight of the newest duration in the moving average


class PrefetchWindow:
    """The window of one peer with `slots` jobs at once and at most `limit` buffered."""

    __slots__ = ("limit", "slots", "average_s", "closed", "last_start")

    def __init__(self, limit: int, slots: int, now: float) -> None:
        self.limit = max(limit, 0)
        self.slots = max(slots, 1)
        self.average_s: float | None = None  # nothing has finished yet
        self.closed = False
        self.last_start = now

    def size(self) -> int:
        """How many jobs to hold beyond the slots now."""
        if self.closed or self.limit == 0:
            return 0
        if self.average_s is None:
            return min(1, self.limit)
        return min(self.limit, int(BUFFER_S * self.slots / max(self.average_s, 1e-6)))

    def started(self, now: float) -> None:
        """A job left the buffer for a slot."""
        self.last_start = now

    def finished(self, duration_s: float) -> None:
        """A job ended after `duration_s`: the pace is known better, and a window closed by
        a long task opens again."""
        average = self.average_s
        self.average_s = duration_s if average is None \
            else average + _SMOOTHING * (duration_s - average)
        self.closed = False

    def check(self, now: float, *, busy: bool) -> bool:
        """Close the window when every slot is busy and none has taken a buffered job for
        STALL_S (a task runs long); the caller then hands the buffer back. True when it
        just closed; it opens again when a job ends."""
        if busy and not self.closed and now - self.last_start > STALL_S:
            self.closed = True
            return True
        return False


def worth_telling(announced: int, size: int) -> bool:
    """Whether a new window size is worth a WINDOW message: it opens or closes, or it moved
    by half or more (the broker needs it roughly, not to the job)."""
    if (announced == 0) != (size == 0):
        return True
    return abs(size - announced) * 2 >= max(announced, 1)
