"""A wheel of this checkout, built as users build one, from a copy of the sources: two tests
building at once (pytest-xdist) never share setuptools' in-tree `build/` directory."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.cluster import ROOT

SOURCES = ("pyproject.toml", "README.md", "zjobs", "broker", "worker", "api")


def build_wheel(workdir: Path) -> Path:
    """Build the wheel in `workdir` (a fresh directory); its path."""
    source = workdir / "source"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                            "-w", str(workdir / "dist"), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = (workdir / "dist").glob("zjobs-*.whl")
    return wheel
