"""The dashboard's ES modules, without a browser: the page loads one module that imports every
file, each import names what its module exports, no state or event type is copied into the
page (it reads them from GET /meta), and the API serves the files as JavaScript."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.api.server import start_api
from tests.cluster import Cluster
from zjobs.api.context import STATIC_DIR
from zjobs.broker.wire.schema import EventType, JobState

ENTRY = "dashboard.js"
MODULES = sorted(p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.rglob("*.js"))
IMPORT = re.compile(r"""\bimport\s*\{([^}]*)\}\s*from\s*'([^']+)'""")
EXPORT = re.compile(r"\bexport\s+(?:async\s+)?(?:function\*?|const|let|class)\s+([\w$]+)")
REGEX_BEFORE = set("(,=:[!&|?{};+-*%<>~^") | {""}  # a `/` after these starts a regex literal


def _tokens(source: str) -> list[tuple[str, str]]:
    """(kind, text) of the source's strings, template literals, comments and the code between:
    enough of JavaScript's lexer to tell a string from a comment or a regex literal."""
    tokens, code, i, n = [], [], 0, len(source)
    while i < n:
        ch, two = source[i], source[i:i + 2]
        if two in ("//", "/*"):
            end = source.find("\n" if two == "//" else "*/", i + 2)
            end = n if end < 0 else end + (0 if two == "//" else 2)
            kind = "comment"
        elif ch in "'\"`" or (ch == "/" and "".join(code).rstrip()[-1:] in REGEX_BEFORE):
            end = _closing(source, i)
            kind = {"'": "string", '"': "string", "`": "template", "/": "regex"}[ch]
        else:
            code.append(ch)
            i += 1
            continue
        tokens += [("code", "".join(code)), (kind, source[i:end])]
        code, i = [], end
    return [*tokens, ("code", "".join(code))]


def _closing(source: str, start: int) -> int:
    """The index after the literal that opens at `start` (its quote, backtick or slash)."""
    quote, i, in_class = source[start], start + 1, False
    while source[i] != quote or in_class:
        if source[i] == "\\":
            i += 1
        elif quote == "/" and source[i] in "[]":
            in_class = source[i] == "["
        i += 1
    return i + 1


def _source(name: str) -> str:
    return (STATIC_DIR / name).read_text()


def _imports(name: str) -> list[tuple[str, list[str]]]:
    """(the imported module's path under static/, the names imported) of module `name`."""
    found = []
    for names, spec in IMPORT.findall(_source(name)):
        target = (Path(name).parent / spec).as_posix()
        parts = []
        for part in target.split("/"):
            parts = parts[:-1] if part == ".." else parts if part == "." else [*parts, part]
        found.append(("/".join(parts), [n.strip() for n in names.split(",") if n.strip()]))
    return found


def test_the_page_loads_one_module_that_imports_every_file() -> None:
    page = (STATIC_DIR / "index.html").read_text()
    assert "s.type = 'module'" in page and f"__ZJ_ASSET('{ENTRY}')" in page
    assert "<script src" not in page  # one entry: the modules load each other
    reached, todo = {ENTRY}, [ENTRY]
    while todo:
        for target, names in _imports(todo.pop()):
            assert target in MODULES, f"an import of {target}, which is not a file"
            exported = set(EXPORT.findall(_source(target)))
            assert set(names) <= exported, f"{target} does not export {set(names) - exported}"
            if target not in reached:
                reached.add(target)
                todo.append(target)
    assert sorted(reached) == MODULES, "a module nothing imports"
    assert len(MODULES) >= 10


def test_no_state_or_event_type_is_copied_into_the_page() -> None:
    """The states and event types come from GET /meta: no literal of one in the code (they
    are named STATE.X and EVENT.X), and no element of one per state in the HTML (the tiles,
    chips and legend are built from GET /meta's list)."""
    facts = {*JobState, *EventType}
    seen = 0
    for name in MODULES:
        literals = [text[1:-1] for kind, text in _tokens(_source(name))
                    if kind == "string" or (kind == "template" and "${" not in text)]
        seen += len(literals)
        copied = sorted({lit for lit in literals if lit in facts})
        assert copied == [], f"{name} spells out {copied}: use STATE.X / EVENT.X"
    assert seen > 300  # the lexer found the strings
    page = (STATIC_DIR / "index.html").read_text()
    per_state = "|".join(JobState)
    assert not re.search(rf"data-status=|\b(?:s|lg|qb|m)-(?:{per_state})\b", page)


def test_every_state_and_event_type_the_code_names_exists() -> None:
    """STATE.X and EVENT.X are filled from GET /meta by the enums' naming rule; a name that
    is not a member would be undefined in the browser, silently."""
    named = {"STATE": set(), "EVENT": set()}
    for name in MODULES:
        code = "".join(text for kind, text in _tokens(_source(name)) if kind == "code")
        for kind, member in re.findall(r"\b(STATE|EVENT)\.([A-Za-z_]\w*)", code):
            named[kind].add(member)
    assert named["STATE"] - set(JobState.__members__) == set()
    assert named["EVENT"] - set(EventType.__members__) == set()
    assert {"FAILED", "RUNNING"} <= named["STATE"] and {"JOB_STARTED", "LOG"} <= named["EVENT"]


def test_the_lexer_tells_strings_from_comments_and_regexes() -> None:
    tokens = _tokens("""a = '/*' + "x\\"y" // 'no'\nb = s.replace(/'[/]'/g, `t${1}`); /* "no" */""")
    kinds = [(kind, text) for kind, text in tokens if kind != "code"]
    assert kinds == [("string", "'/*'"), ("string", '"x\\"y"'), ("comment", "// 'no'"),
                     ("regex", "/'[/]'/"), ("template", "`t${1}`"), ("comment", '/* "no" */')]


def test_the_api_serves_the_modules_as_javascript(cluster: Cluster) -> None:
    api = start_api(cluster, token="s3cret")
    with httpx.Client(base_url=api.base_url, timeout=30) as anonymous:  # static: public
        for name in MODULES:
            served = anonymous.get(f"/static/{name}")
            assert served.status_code == 200, name
            assert served.headers["content-type"] == "text/javascript; charset=utf-8", name
            assert served.headers["cache-control"] == "no-cache", name
            assert served.text == _source(name)
        page = anonymous.get("/")
        assert page.headers["cache-control"] == "no-cache"
        assert anonymous.get("/static/dashboard.css").headers["content-type"].startswith(
            "text/css")
