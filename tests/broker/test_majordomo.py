"""The Majordomo bridge's pure part: how a turn's requests are cut into SUBMITs (its window
is every worker's, tests/broker/test_prefetch.py). The bridge itself is tested on real
processes in tests/e2e/test_mdp.py."""

from __future__ import annotations

from broker.majordomo import BATCH_BYTES, BATCH_JOBS, _batches


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
