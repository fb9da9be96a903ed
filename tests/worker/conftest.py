"""What the worker tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def work_root(tmp_path: Path) -> Iterator[Path]:
    """A directory for the runner's job directories, which must be gone afterwards."""
    root = tmp_path / "work"
    root.mkdir()
    yield root
    assert list(root.iterdir()) == [], "the work directory was not removed"
