"""docs/protocol.md is the specification of ZJP/1: every command, error code and event type
the broker knows must be in it, so the code and the document cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

from broker import errors, protocol
from broker.jobs import STATES

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "protocol.md").read_text()
EMITTED = re.compile(r"""emit\(\s*["']([a-z_.]+)["']""")


def _documented(name: str) -> bool:
    return f"`{name}`" in DOC


def test_every_command_and_header_is_specified() -> None:
    frames = {name: value for name, value in vars(protocol).items()
              if name.isupper() and isinstance(value, bytes)}
    assert len(frames) > 20  # the headers, the client and the worker commands
    missing = sorted({value.decode() for value in frames.values()
                      if not _documented(value.decode())})
    assert missing == [], f"docs/protocol.md does not specify {missing}"
    for command in protocol.CLIENT_COMMANDS:  # each has a section of its own
        assert f"#### `{command.decode()}`" in DOC, command


def test_every_error_code_is_specified() -> None:
    codes = {value for name, value in vars(errors).items()
             if name.isupper() and isinstance(value, str) and re.fullmatch(r"[a-z_]+", value)}
    assert {"bad_request", "not_found", "unavailable"} <= codes
    assert sorted(c for c in codes if not _documented(c)) == []


def test_every_event_type_is_specified() -> None:
    emitted = {m for path in (ROOT / "broker").glob("*.py")
               for m in EMITTED.findall(path.read_text())}
    assert {"job.started", "log", "queue.updated"} <= emitted
    # a job enters `running` with job.started and `deferred` with job.submitted
    entered = {f"job.{state}" for state in STATES if state not in ("running", "deferred")}
    types = emitted | entered | {"job.submitted", "worker.lost", "worker.left"}
    assert sorted(t for t in types if not _documented(t)) == []
