"""Main-environment side of the peer benchmarks: the peer virtualenv, redis, subprocesses.

Nothing here imports a peer package: the peers live only in the peer
virtualenv (scripts/install_peers.sh), and every process that touches them,
workers and producer alike, runs that virtualenv's python with
``bench/peers/venv_side`` on its PYTHONPATH.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_SIDE = Path(__file__).resolve().parent / "venv_side"
DEFAULT_VENV = REPO_ROOT / ".bench-venv"
STOP_GRACE_S = 5.0
REDIS_START_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1


class PeerUnavailable(Exception):
    """The peer cannot be run here; the message says why, for the ``skipped`` field."""


# ------------------------------------------------------------------ virtualenv


def peer_venv() -> Path:
    """The peer virtualenv: $ZJOBS_PEER_VENV, else .bench-venv/ at the repo root."""
    return Path(os.environ.get("ZJOBS_PEER_VENV") or DEFAULT_VENV)


def peer_python() -> Path:
    """The peer virtualenv's python, or PeerUnavailable if there is none."""
    python = peer_venv() / "bin" / "python"
    if not python.exists():
        raise PeerUnavailable(
            f"peer virtualenv {peer_venv()} not found: run scripts/install_peers.sh"
        )
    return python


def peer_bin(name: str) -> Path:
    """A console script of the peer virtualenv (``celery``, ``rq``, ...)."""
    path = peer_venv() / "bin" / name
    if not path.exists():
        raise PeerUnavailable(f"{path} not found: run scripts/install_peers.sh")
    return path


def require_modules(*modules: str) -> None:
    """Raise PeerUnavailable unless the peer virtualenv can import ``modules``."""
    code = "; ".join(f"import {m}" for m in modules)
    proc = subprocess.run(
        [str(peer_python()), "-c", code], capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["import failed"])[-1]
        raise PeerUnavailable(f"{', '.join(modules)} not importable in {peer_venv()}: {last}")


def peer_env(redis_url: str | None = None, pg_url: str | None = None) -> dict[str, str]:
    """Environment of every peer process: venv_side importable, store URL, no .pyc noise."""
    env = dict(os.environ)
    env.pop("PYTHONHOME", None)
    env["PYTHONPATH"] = str(VENV_SIDE)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env["VIRTUAL_ENV"] = str(peer_venv())
    env["PATH"] = f"{peer_venv() / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    if redis_url:
        env["ZJP_REDIS_URL"] = redis_url
    if pg_url:
        env["ZJP_PG_URL"] = pg_url
    return env


# ----------------------------------------------------------------- processes


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the benchmark process dies.

    ``finally`` blocks stop every process on errors and Ctrl-C, but not when
    the benchmark itself is killed; this keeps workers and redis from
    outliving it then. Linux only; elsewhere a no-op.
    """
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # the process's own libc
    except (OSError, AttributeError):
        pass


def _stop_group(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM the process group we started (workers fork children), then SIGKILL it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers: forked children of the leader
    except ProcessLookupError:
        pass
    proc.wait()


def _tail(log: IO[bytes], limit: int = 800) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-limit:]


@contextmanager
def started(
    cmd: Sequence[str], env: dict[str, str], stdout: int | IO[bytes] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` in its own session (process group); stop the whole group on exit."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            list(cmd),
            env=env,
            cwd=VENV_SIDE,
            stdin=subprocess.DEVNULL,
            stdout=log if stdout is None else stdout,
            stderr=log,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            yield proc
        except Exception as exc:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {_tail(log)}") from exc
            raise
        finally:
            _stop_group(proc)
            if proc.stdout is not None:
                proc.stdout.close()


@contextmanager
def started_all(cmds: Sequence[Sequence[str]], env: dict[str, str]) -> Iterator[None]:
    """Start every command in ``cmds``; stop them all on exit, even on error."""
    with ExitStack() as stack:
        for cmd in cmds:
            stack.enter_context(started(cmd, env))
        yield


def run_once(cmd: Sequence[str], env: dict[str, str], timeout: float = 120) -> None:
    """Run a one-off setup command of a peer (a schema install); raise with its output."""
    proc = subprocess.run(
        list(cmd), env=env, cwd=VENV_SIDE, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout)[-800:]
        raise RuntimeError(f"{' '.join(cmd[:3])} exited {proc.returncode}: {output}")


def drive(peer: str, n_jobs: int, n_workers: int, env: dict[str, str], *args: str) -> dict:
    """Run the producer of ``peer`` in the peer virtualenv; return its JSON record."""
    cmd = [str(peer_python()), str(VENV_SIDE / "zjp_drive.py"), peer, str(n_jobs), str(n_workers)]
    timeout = 300 + n_jobs / 10  # generous: a slow peer is a result, a hang is not
    proc = subprocess.run(
        [*cmd, *args], env=env, cwd=VENV_SIDE, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{peer} producer exited {proc.returncode}: {proc.stderr[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def result(name: str, record: dict, note: str) -> dict:
    """The record every peer returns."""
    seconds = record["seconds"]
    return {
        "name": name,
        "jobs": record["jobs"],
        "seconds": seconds,
        "jobs_per_s": record["jobs"] / seconds,
        "workers": record["workers_seen"],
        "note": note,
    }


# --------------------------------------------------------------------- redis


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _wait_redis(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + REDIS_START_TIMEOUT_S
    while not _pong(port):
        if proc.poll() is not None:
            raise PeerUnavailable(f"redis-server exited {proc.returncode} on port {port}")
        if time.monotonic() > deadline:
            raise PeerUnavailable(f"redis-server did not answer on port {port}")
        time.sleep(0.05)


@contextmanager
def redis_server() -> Iterator[str]:
    """A private, non-persistent redis-server on a free loopback port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise PeerUnavailable(
            "redis-server not found: apt-get install redis-server (scripts/install_peers.sh)"
        )
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="zjobs-redis-") as workdir:
        cmd = [
            binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--dir", workdir,
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        try:
            _wait_redis(proc, port)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
