"""Facts defined once, checked across the package: the job states are named from `JobState`
(broker/wire/schema.py), the version comes only from pyproject.toml, and every runtime
dependency is one the package uses."""

from __future__ import annotations

import ast
import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from zjobs.broker.client.client import RECONNECT_IVL_MAX_MS, RECONNECT_IVL_MS
from zjobs.broker.wire.schema import STATES
from zjobs.broker.wire.version import __version__
from zjobs.worker.runtime import WorkerConfig

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = ("zjobs", "broker", "worker", "api")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCHEMA = ROOT / "broker" / "wire" / "schema.py"
# The Python client is being rewritten elsewhere (issue 24, typed clients); until that lands
# it still compares a few statuses as strings. Empty this once it names them from JobState.
NOT_YET: set = set()
# Runtime dependencies the package uses without importing them by name, and where.
USED_THROUGH = {
    # starlette parses multipart bodies with it: an exec job's files (request.form)
    "python-multipart": (ROOT / "api" / "uploads.py", "request.form("),
}


def _sources() -> list[Path]:
    return [path for name in PACKAGE_DIRS for path in (ROOT / name).rglob("*.py")]


def _is_state(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in STATES


def _all_states(node: ast.AST, least: int) -> bool:
    return isinstance(node, ast.Set | ast.Tuple | ast.List) and len(node.elts) >= least \
        and all(_is_state(e) for e in node.elts)


def _retyped_states(tree: ast.AST) -> list[int]:
    """Lines comparing with a state written as a string, or listing states as strings (a
    set, a tuple, a list, the keys of a map): each a copy of `JobState`."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            found = any(_is_state(c) or _all_states(c, 1)
                        for c in (node.left, *node.comparators))
        elif isinstance(node, ast.BinOp):
            found = _all_states(node.left, 1) or _all_states(node.right, 1)
        elif isinstance(node, ast.Dict):
            keys = [k for k in node.keys if isinstance(k, ast.Constant)]
            found = len(keys) >= 2 and all(_is_state(k) for k in keys)
        else:
            found = _all_states(node, 2)
        if found:
            lines.append(node.lineno)
    return lines


def test_no_module_retypes_the_job_states() -> None:
    copies = [f"{path.relative_to(ROOT)}:{line}" for path in _sources()
              if path != SCHEMA and path not in NOT_YET
              for line in _retyped_states(ast.parse(path.read_text()))]
    assert copies == [], "name the states from JobState (broker/wire/schema.py)"


def test_the_state_check_finds_a_copy() -> None:
    copy = 'if job["status"] == "succeeded": pass\nDONE = ("failed", "cancelled")\n' \
           'COLOURS = {"queued": 1, "running": 2}\nrest = statuses - {"running"}\n'
    assert _retyped_states(ast.parse(copy)) == [1, 2, 3, 4]
    fields = '{"running": [], "failed": 0, "name": "w"}\nreason = "failed"\n'
    assert _retyped_states(ast.parse(fields)) == []


def test_the_version_is_pyprojects_and_defined_nowhere_else() -> None:
    assert __version__ == PYPROJECT["project"]["version"]
    assignment = re.compile(r"^\s*(__version__|VERSION|version)\s*[:=][^=]*[\"']\d+\.\d+",
                            re.MULTILINE)
    elsewhere = [str(path.relative_to(ROOT)) for path in _sources()
                 if assignment.search(path.read_text())]
    assert elsewhere == []
    static = ROOT / "api" / "static"
    assert [p.name for p in static.rglob("*.js")
            if re.search(r"version\s*[:=]\s*['\"]\d", p.read_text(), re.IGNORECASE)] == []


def _imported_roots() -> set[str]:
    roots = set()
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots.add(node.module.split(".")[0])
    return roots


def _distribution(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()


def test_every_runtime_dependency_is_used_by_the_package() -> None:
    provides: dict[str, set[str]] = {}
    for module, dists in packages_distributions().items():
        for dist in dists:
            provides.setdefault(dist.lower().replace("_", "-"), set()).add(module)
    imported = _imported_roots()
    unused = []
    for requirement in PYPROJECT["project"]["dependencies"]:
        dist = _distribution(requirement)
        if dist in USED_THROUGH:
            path, use = USED_THROUGH[dist]
            assert use in path.read_text(), f"{dist}: {path.name} no longer uses it"
            continue
        assert dist in provides, f"{dist} is not installed"
        if not provides[dist] & imported:
            unused.append(dist)
    assert unused == [], "runtime dependencies nothing in the package imports"


def test_the_readme_states_the_reconnect_backoff_the_code_uses() -> None:
    config = WorkerConfig()
    readme = " ".join((ROOT / "README.md").read_text().split())
    worker = f"from {config.reconnect_initial_s:g} s doubling to {config.reconnect_max_s:g} s"
    assert worker in readme
    client = f"from {RECONNECT_IVL_MS} ms to {RECONNECT_IVL_MAX_MS / 1000:g} s"
    assert client in readme
