"""The Majordomo bridge's pure parts: how a turn's requests are cut into SUBMITs, and how
large a Majordomo worker's prefetch window is. The bridge itself is tested on real
processes in tests/e2e/test_mdp.py."""

from __future__ import annotations

from broker.majordomo import (
    BATCH_BYTES,
    BATCH_JOBS,
    LONG_S,
    PREFETCH_MAX,
    WINDOW_S,
    _batches,
    _window,
)


def _requests(n: int, size: int = 10) -> list[tuple[bytes, dict]]:
    return [(f"c{i}".encode(), {"task": "s", "queue": "s", "args": [bytes(size)]})
            for i in range(n)]


def test_a_turn_of_requests_is_one_submit_in_order() -> None:
    new = _requests(300)
    assert _batches(new) == [new]
    assert _batches([]) == []


def test_batches_close_at_the_job_and_byte_limits_and_keep_the_order() -> None:
    many = _requests(BATCH_JOBS * 2 + 1)
    assert [len(b) for b in _batches(many)] == [BATCH_JOBS, BATCH_JOBS, 1]
    big = _requests(5, size=BATCH_BYTES // 2 - 100)  # two fit under the byte limit, not three
    batches = _batches(big)
    assert [len(b) for b in batches] == [2, 2, 1]
    assert [pair for batch in batches for pair in batch] == big
    huge = _requests(2, size=BATCH_BYTES * 2)  # over the limit alone: a SUBMIT of its own
    assert [len(b) for b in _batches(huge)] == [1, 1]


def test_the_window_holds_about_window_s_of_work_within_its_bounds() -> None:
    assert _window(LONG_S) == 1  # what a new worker starts with: one request at hand
    assert _window(WINDOW_S) == 1 and _window(10.0) == 1  # long requests: nothing hoarded
    assert _window(0.0) == PREFETCH_MAX and _window(WINDOW_S / 1000) == PREFETCH_MAX
    sizes = [_window(WINDOW_S / k) for k in range(1, 200)]
    assert sizes == sorted(sizes)  # faster requests never shrink it
    assert all(size & (size - 1) == 0 for size in sizes)  # powers of two: few WINDOW messages
    assert all(size * (WINDOW_S / k) <= WINDOW_S for k, size in enumerate(sizes, 1))
