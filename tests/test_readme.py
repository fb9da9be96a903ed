"""The README runs: every command and code example in it, in order, against a live zjobs, so
that it cannot drift from what zjobs does. How each block is run: tests/readme.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .readme import ROOT, RUN_LANGS, Block, Command, Session, blocks, commands, output_matches

README = ROOT / "README.md"


def test_every_block_is_run_or_says_why_not() -> None:
    """A new block in another language, or none, is a decision to make, not one to miss."""
    for block in blocks(README.read_text()):
        assert block.lang in RUN_LANGS or block.skip, (
            f"README.md:{block.line}: a ```{block.lang} block: make it sh, console or python, "
            "or put <!-- readme-test: skip (why) --> on the line before it")


def test_the_convention() -> None:
    markdown = ("text\n```console\n$ zjobs a \\\n    --b\nout 12\n$ zjobs c   # no output\n```\n"
                "<!-- readme-test: skip (too slow) -->\n```sh\nbash x\n```\n"
                "```python\n# pkg/mod.py\nx = 1\n```\n")
    first, skipped, file = blocks(markdown)
    assert commands(first) == [Command(3, "zjobs a \\\n    --b", ["out 12"]),
                               Command(6, "zjobs c   # no output")]
    assert (skipped.skip, file.file, first.file) == ("too slow", "pkg/mod.py", None)
    assert output_matches(["queue q: 12 jobs cancelled"], "queue q: 0 jobs cancelled\n")
    assert output_matches(["failed: Timeout: ..."], "failed: Timeout: the job exceeded it")
    assert not output_matches(["queue q paused, no rate limit"], "queue q paused, at most 5")
    assert not output_matches(["5"], "5\nerror: and more")
    assert Block(1, "python", "import os\n").file is None


@pytest.mark.timeout(900)
def test_the_readme_runs(tmp_path: Path) -> None:
    session = Session(tmp_path / "reader")
    try:
        for block in blocks(README.read_text()):
            if block.skip is None:
                started = time.monotonic()
                session.run(block)
                print(f"README.md:{block.line} {block.lang} {time.monotonic() - started:.1f} s")
    finally:
        session.close()
    assert not session.failures, "\n\n".join(session.failures)
