from __future__ import annotations

from collections.abc import Iterator

import pytest

from .cluster import Cluster


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    """A broker on free ports (started) and no workers yet; everything is stopped afterwards."""
    c = Cluster(tmp_path)
    try:
        c.start_broker()
        yield c
    finally:
        c.close()


@pytest.fixture
def bare_cluster(tmp_path) -> Iterator[Cluster]:
    """Like `cluster`, but nothing started."""
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()
