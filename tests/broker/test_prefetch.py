"""The prefetch window's policy (broker/prefetch.py), on a fake clock: pure."""

from __future__ import annotations

from zjobs.broker.wire.prefetch import BUFFER_S, STALL_S, PrefetchWindow, worth_telling


def test_a_new_window_holds_one_job_then_grows_while_jobs_finish_fast() -> None:
    window = PrefetchWindow(256, 1, now=0.0)
    assert window.size() == 1  # nothing finished yet: one job at hand
    for _ in range(5):
        window.finished(0.00001)
    assert window.size() == 256  # no-ops: the limit
    slow = PrefetchWindow(256, 1, now=0.0)
    for _ in range(20):
        slow.finished(BUFFER_S / 10)
    assert 5 <= slow.size() <= 10  # about BUFFER_S of work at this pace
    for _ in range(20):
        slow.finished(BUFFER_S * 4)
    assert slow.size() == 0  # tasks of 200 ms: nothing held beyond the slot


def test_a_window_is_sized_for_all_the_slots() -> None:
    window = PrefetchWindow(10_000, 100, now=0.0)
    for _ in range(20):
        window.finished(0.1)  # 100 slots of 100 ms tasks: 1,000 jobs/s
    assert 45 <= window.size() <= 50  # 50 ms of that


def test_a_busy_window_that_has_not_moved_closes_until_a_job_ends() -> None:
    window = PrefetchWindow(256, 1, now=0.0)
    window.finished(0.0001)
    window.started(10.0)
    assert not window.check(10.0 + STALL_S / 2, busy=True)
    assert not window.check(10.0 + STALL_S * 2, busy=False)  # a free slot: nothing stalls
    assert window.check(10.0 + STALL_S * 2, busy=True)  # closes once...
    assert not window.check(10.0 + STALL_S * 3, busy=True)  # ...and says so once
    assert window.closed and window.size() == 0
    window.finished(6.0)  # the long task ended: open again (small, at the new pace)
    assert not window.closed


def test_a_window_of_zero_stays_zero() -> None:
    window = PrefetchWindow(0, 4, now=0.0)
    window.finished(0.0)
    assert window.size() == 0


def test_only_moves_that_matter_are_told() -> None:
    assert worth_telling(0, 1) and worth_telling(5, 0)  # opening, closing
    assert worth_telling(256, 100) and worth_telling(100, 256)  # by half or more
    assert not worth_telling(256, 250) and not worth_telling(1, 1)
