"""Files of an `exec` job on the client side: a directory read in, artifacts written out."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

SKIP_DIRS = {".git", "__pycache__", ".venv", "node_modules", ".zjobs"}
MAX_TREE_BYTES = 12 * 1024 * 1024


def read_tree(directory: str | Path) -> dict[str, bytes]:
    """Every regular file under `directory` by its relative posix path (symlinks skipped)."""
    root = Path(directory)
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS for part in rel.parts) or path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        total += len(data)
        if total > MAX_TREE_BYTES:
            raise ValueError(f"{directory} holds more than {MAX_TREE_BYTES} bytes of files")
        files[PurePosixPath(*rel.parts).as_posix()] = data
    return files


def save_artifacts(client: Any, job_id: str, directory: str | Path) -> list[Path]:
    """Download every artifact of the job under `directory`; names never leave it."""
    out = Path(directory).resolve()
    saved = []
    for item in client.artifacts(job_id):
        target = (out / item["name"]).resolve()
        if not target.is_relative_to(out):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(client.download(job_id, item["name"])["data"])
        saved.append(target)
    return saved
