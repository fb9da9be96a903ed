"""Finding a test's processes on the host, wherever they went (another session, namespace)."""

from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path

# A program that starts a daemon the classic way: a child in a new session (setsid)
# forks a grandchild and exits, so the grandchild is an orphan in a session of its
# own. It ignores SIGTERM and holds the job's stdout. argv: marker, then "exit" (the
# entry ends at once) or "wait" (it waits for its timeout).
DAEMONIZER = textwrap.dedent("""
    import os, signal, subprocess, sys
    marker, then = sys.argv[1], sys.argv[2]
    DAEMON = (
        "import os, signal, sys\\n"
        "if os.fork():\\n"
        "    os._exit(0)\\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
        "os.write(int(sys.argv[2]), b'up')\\n"
        "os.close(int(sys.argv[2]))\\n"
        "signal.pause()\\n"
    )
    r, w = os.pipe()
    subprocess.run([sys.executable, "-c", DAEMON, marker, str(w)], start_new_session=True,
                   pass_fds=(w,))
    os.close(w)
    os.read(r, 100)  # "up": the grandchild runs, alone in its session
    print("ready", flush=True)
    if then == "wait":
        signal.pause()
""")


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
