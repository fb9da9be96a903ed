"""The package as users install and import it: one top-level import package, `zjobs`, with the
public names at its top; and inside it, layers whose imports only run downward."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.cluster import ROOT
from tests.packaging import build_wheel

PUBLIC = {"Client", "AsyncClient", "task", "progress", "log", "Retry", "current_job",
          "JobContext", "ZJobsError", "BrokerError", "BrokerUnreachable", "AuthError",
          "FunctionError", "InvalidJob", "JobCancelled", "JobFailed", "__version__"}


def test_a_wheel_installs_exactly_one_top_level_package_with_its_files(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"zjobs"}
    for needed in ("zjobs/__init__.py", "zjobs/cli.py", "zjobs/broker/server.py",
                   "zjobs/broker/wire/protocol.py", "zjobs/worker/runtime.py",
                   "zjobs/api/app.py", "zjobs/api/static/index.html",
                   "zjobs/api/static/dashboard.js"):
        assert needed in names, needed
    assert any(name.startswith("zjobs/api/static/views/") for name in names)
    assert not any(name.startswith(("zjobs/bench", "bench/", "tests/")) for name in names)


def test_import_zjobs_gives_the_public_names_and_loads_nothing_else(tmp_path: Path) -> None:
    """From a directory of the user's own (no checkout on the path): the names are there,
    and `import zjobs` alone loads neither the client nor the worker."""
    script = ("import sys, zjobs\n"
              "loaded = sorted(m for m in sys.modules if m.startswith('zjobs.'))\n"
              "names = sorted(n for n in zjobs.__all__ if getattr(zjobs, n, None) is not None)\n"
              "print(loaded); print(names); print(zjobs.Client.__module__)\n")
    ran = subprocess.run([sys.executable, "-P", "-c", script], cwd=tmp_path, text=True,
                         capture_output=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    loaded, names, client_module = ran.stdout.splitlines()
    assert ast.literal_eval(loaded) == ["zjobs.broker", "zjobs.broker.wire",
                                        "zjobs.broker.wire.version"]
    assert set(ast.literal_eval(names)) == PUBLIC
    assert client_module == "zjobs.broker.client.client"


# --------------------------------------------------------------------------- layers

# Each room of the package and the rooms it may import (besides itself). What is not listed
# may not be imported: an arrow upward, or across to a sibling that is not below.
ROOMS = {
    "broker.wire": set(),
    "broker.stores": {"broker.wire"},
    "broker.client": {"broker.wire"},
    "broker.core": {"broker.wire", "broker.stores"},
    "broker.bridges": {"broker.wire", "broker.core"},
    "broker.server": {"broker.wire", "broker.stores", "broker.core", "broker.bridges"},
    "broker.standby": {"broker.wire", "broker.stores", "broker.server"},
    "worker": {"broker.wire"},
    "api": {"broker.wire", "broker.client"},
    # the top layer: the CLI, `zjobs up` and its supervisor, the public face
    "top": {"broker.wire", "broker.client", "broker.server", "broker.standby", "worker",
            "api", "face", "bench"},
}
PACKAGE_DIRS = {"zjobs": ROOT / "zjobs", "broker": ROOT / "broker", "worker": ROOT / "worker",
                "api": ROOT / "api"}


def _room_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "zjobs":
        return "top"
    if rel.parts[0] == "broker":
        return f"broker.{rel.parts[1] if len(rel.parts) > 2 else rel.stem}"
    return rel.parts[0]


def _room_imported(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "bench":
        return "bench"
    if parts[0] != "zjobs":
        return None
    if len(parts) == 1:
        return "face"
    if parts[1] == "broker":
        return f"broker.{parts[2]}" if len(parts) > 2 else "broker"
    return parts[1] if parts[1] in ("worker", "api") else "top"


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def test_no_module_imports_a_higher_layer_or_the_old_top_level_names() -> None:
    wrong: list[str] = []
    for directory in PACKAGE_DIRS.values():
        for path in directory.rglob("*.py"):
            room = _room_of(path)
            for module in _imports(path):
                if module.split(".")[0] in ("broker", "worker", "api"):
                    wrong.append(f"{path.relative_to(ROOT)} imports {module}: write zjobs.{module}")
                target = _room_imported(module)
                if target is None or target == room or target == "broker":
                    continue
                if target not in ROOMS[room]:
                    wrong.append(f"{path.relative_to(ROOT)} ({room}) imports {module} ({target})")
    assert wrong == []


def test_tests_bench_and_examples_import_zjobs_not_the_old_names() -> None:
    old = [f"{path.relative_to(ROOT)}: {module}"
           for folder in ("tests", "bench")
           for path in (ROOT / folder).rglob("*.py")
           for module in _imports(path)
           if module.split(".")[0] in ("broker", "worker", "api")]
    assert old == []
