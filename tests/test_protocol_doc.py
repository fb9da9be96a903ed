"""docs/protocol.md is the specification of ZJP/1: every command, error code and event type
the broker knows must be in it, so the code and the document cannot drift apart. The event
types are `EventType`'s, and the broker emits nothing else."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from zjobs.broker.wire import errors, protocol
from zjobs.broker.wire.schema import STATE_EVENTS, EventType, JobState

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "protocol.md").read_text()


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


def _event_table() -> list[str]:
    """The types of docs/protocol.md's event table (7.3), in its order."""
    section = DOC.split("### 7.3 Types", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, re.MULTILINE)


def test_the_event_table_lists_exactly_the_event_types() -> None:
    table = _event_table()
    assert len(table) == len(set(table)), "a type listed twice"
    assert sorted(table) == sorted(EventType), "docs/protocol.md 7.3 and EventType differ"


def test_the_states_section_lists_exactly_the_job_states_in_order() -> None:
    section = DOC.split("### 5.3 States", 1)[1].split("\n### ", 1)[0]
    listed = re.findall(r"`([a-z]+)`", section.split(". ", 1)[0])  # the first sentence
    assert listed == [state.value for state in JobState], "docs/protocol.md 5.3 and JobState"


def test_protocol_notes_are_merged_into_the_protocol() -> None:
    """One document for the protocol: nothing links the old notes file."""
    assert not (ROOT / "docs" / "protocol-notes.md").exists()
    texts = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"),
             *(p for d in ("zjobs", "broker", "worker", "api") for p in (ROOT / d).rglob("*.py"))]
    assert [str(p.relative_to(ROOT)) for p in texts if "protocol-notes" in p.read_text()] == []


def test_each_event_type_is_named_after_its_value() -> None:
    """The dashboard names a type of GET /meta's list as the enum does: `job.succeeded` is
    EVENT.JOB_SUCCEEDED, by this rule (and a state STATE.RUNNING)."""
    for enum in (EventType, JobState):
        assert [m.name for m in enum] == [m.value.upper().replace(".", "_") for m in enum]
    assert set(STATE_EVENTS.values()) <= set(EventType)


def _emitted(node: ast.expr, assigned: dict[str, list[ast.expr]]) -> set[str] | None:
    """The EventType members an `emit`'s type argument can be, or None if it can be anything
    else: a literal, an f-string, a call."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
            and node.value.id in ("E", "EventType"):
        return {node.attr}
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
            and node.value.id == "STATE_EVENTS":
        return {kind.name for kind in STATE_EVENTS.values()}
    if isinstance(node, ast.IfExp):
        sides = [_emitted(node.body, assigned), _emitted(node.orelse, assigned)]
        return None if None in sides else sides[0] | sides[1]
    if isinstance(node, ast.Name) and assigned.get(node.id):
        found = [_emitted(value, {}) for value in assigned[node.id]]
        return None if None in found else set().union(*found)
    return None


def _emits() -> list[tuple[str, set[str] | None]]:
    """Every `.emit(...)` call in broker/: where, and the member names its type can be."""
    calls = []
    for path in sorted((ROOT / "broker").rglob("*.py")):
        for func in ast.walk(ast.parse(path.read_text())):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assigned: dict[str, list[ast.expr]] = {}
            for node in ast.walk(func):
                if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                        and isinstance(node.targets[0], ast.Name):
                    assigned.setdefault(node.targets[0].id, []).append(node.value)
            for node in ast.walk(func):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                        and node.func.attr == "emit" and node.args:
                    where = f"{path.name}:{node.lineno}"
                    calls.append((where, _emitted(node.args[0], assigned)))
    return calls


def test_the_broker_emits_only_event_types_and_every_one() -> None:
    """Each `emit` names its type as an EventType member (never a string of its own), and
    each member is emitted somewhere: the enum is what the broker publishes, no more."""
    calls = _emits()
    assert len(calls) >= 12
    loose = [where for where, kinds in calls if kinds is None]
    assert loose == [], f"emit with a type that is not an EventType member at {loose}"
    named = set().union(*(kinds for _, kinds in calls))
    members = {kind.name for kind in EventType}
    assert sorted(named - members) == [], "emit of a type the enum does not have"
    assert sorted(members - named) == [], "an event type the broker never emits"
