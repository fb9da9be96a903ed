"""`zjobs up` as a user starts it, on free ports, for tests; and the processes of its session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.cluster import ROOT
from tests.waiting import free_port, wait_until
from zjobs.broker.wire.orphans import processes

ZJOBS = Path(sys.executable).parent / "zjobs"  # the console script, as users run it


def session_processes(sid: int) -> list[int]:
    """Live (not zombie) processes of session `sid`."""
    return [pid for pid, state, _, _, session in processes() if session == sid and state != "Z"]


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class Up:
    """One `zjobs up` in its own session; `close()` leaves nothing of it running."""

    def __init__(self, tmp: Path, *args: str, ports: list[int] | None = None,
                 cwd: Path = ROOT, command: list[str] | None = None) -> None:
        self.ports = ports or [free_port() for _ in range(4)]
        self.tmp, self.args, self.cwd = tmp, args, cwd
        self.command = command or [sys.executable, "-m", "zjobs"]
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
                    "ZJOBS_FRONTEND": f"tcp://127.0.0.1:{self.ports[0]}",
                    "ZJOBS_BACKEND": f"tcp://127.0.0.1:{self.ports[1]}",
                    "ZJOBS_EVENTS": f"tcp://127.0.0.1:{self.ports[2]}",
                    "ZJOBS_PORT": str(self.ports[3]), "ZJOBS_DATA_DIR": str(tmp / "store"),
                    "ZJOBS_HEARTBEAT_INTERVAL": "0.25"}
        self.log_path = tmp / f"up-{len(list(tmp.glob('up-*.log')))}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports[3]}"

    def start(self) -> Up:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [*self.command, "up", *self.args], cwd=self.cwd,
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 40) -> None:
        wait_until(lambda: "zjobs is up" in self.log() or self.proc.poll() is not None, timeout,
                   message="zjobs up to say it is up")
        assert self.proc.poll() is None, self.log()

    def zjobs(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "zjobs", *args], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in session_processes(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
