"""Finding a test's processes on the host, wherever they went (another session, namespace)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def new_marker() -> str:
    """A word to put on the command line of every process a test starts, to find them all."""
    return f"zjobs-marker-{uuid.uuid4().hex}"


def marked(marker: str) -> list[int]:
    """Host pids of the live (not zombie) processes whose command line holds `marker`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            state = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != b"Z":
            found.append(int(name))
    return found
