"""CURVE roles on real processes: each key only on its own socket, refusals said so."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.waiting import wait_until
from zjobs import AuthError, Client
from zjobs.broker.wire.curve import ClientCurve, generate


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    generate(directory)
    return directory


@pytest.fixture
def secured(tmp_path: Path, keys: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path / "run", curve_dir=keys)
    try:
        cluster.start_broker()
        yield cluster
    finally:
        cluster.close()


def _refused_quickly(cluster: Cluster, curve: ClientCurve | None) -> str:
    started = time.monotonic()
    with Client(cluster.frontend, curve=curve, timeout=10) as client:
        with pytest.raises(AuthError) as caught:
            client.ping()
    assert time.monotonic() - started < 5, "the refusal must not wait for the timeout"
    return str(caught.value)


def test_known_client_works_and_worker_key_is_refused_on_the_frontend(
        secured: Cluster, keys: Path) -> None:
    secured.start_worker("w1")
    known = secured.client()
    assert known.result(known.submit("add", 1, 2), timeout=20) == 3
    message = _refused_quickly(secured, ClientCurve(str(keys / "worker.key_secret"),
                                                    str(keys / "broker.key")))
    assert "CURVE handshake refused by tcp://" in message
    assert "not allowed on the frontend" in message
    assert "socket=frontend" in secured.log_text("broker")


def test_stranger_and_plain_clients_get_an_auth_error(secured: Cluster, tmp_path: Path,
                                                      keys: Path) -> None:
    generate(tmp_path / "stranger")
    stranger = ClientCurve(str(tmp_path / "stranger" / "client.key_secret"),
                           str(keys / "broker.key"))
    assert "not allowed" in _refused_quickly(secured, stranger)
    assert "CURVE handshake" in _refused_quickly(secured, None)
    assert secured.client().stats()["counters"]["submitted"] == 0


def test_client_key_cannot_register_as_a_worker(secured: Cluster, tmp_path: Path,
                                                keys: Path) -> None:
    rogue = tmp_path / "rogue"
    shutil.copytree(keys, rogue)
    for suffix in ("key", "key_secret"):
        shutil.copy(keys / f"client.{suffix}", rogue / f"worker.{suffix}")
    secured.start_worker("rogue", "--curve-dir", str(rogue), wait=False)
    wait_until(lambda: "socket=backend" in secured.log_text("broker"), 20,
               message="the broker to refuse the client key on the backend")
    client = secured.client()
    job_id = client.submit("add", 2, 3)
    secured.start_worker("honest")
    assert client.result(job_id, timeout=20) == 5
    assert client.get(job_id)["worker"] == "honest"
    joined = [e["worker"] for e in client.replay(0)["events"] if e["type"] == "worker.joined"]
    assert joined == ["honest"]


def test_worker_without_its_own_key_stops_with_one_error_line(secured: Cluster,
                                                              tmp_path: Path,
                                                              keys: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(keys, partial)
    (partial / "worker.key_secret").unlink()
    proc = secured.start_worker("keyless", "--curve-dir", str(partial), wait=False)
    assert proc.wait(30) == 1
    lines = secured.log_text("worker-keyless").strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no worker key in"), lines


def test_a_refused_key_on_the_command_line_is_one_error_line(secured: Cluster, tmp_path: Path,
                                                             keys: Path) -> None:
    import subprocess
    import sys

    from tests.cluster import ROOT

    generate(tmp_path / "stranger")
    mixed = tmp_path / "mixed"  # the right broker key, a client key nobody allowed
    shutil.copytree(keys, mixed)
    for suffix in ("key", "key_secret"):
        shutil.copy(tmp_path / "stranger" / f"client.{suffix}", mixed / f"client.{suffix}")
    env = {**secured.env(), "ZJOBS_CURVE_DIR": str(mixed)}
    done = subprocess.run([sys.executable, "-m", "zjobs", "status"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("error: CURVE handshake refused by tcp://") and "not allowed" in line


def test_keys_generate_writes_secret_keys_for_their_owner_only(tmp_path: Path) -> None:
    import stat
    import subprocess
    import sys

    from tests.cluster import ROOT
    from zjobs.broker.wire.curve import ROLES

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    keys = tmp_path / "new" / "keys"
    for _ in range(2):  # again over the same directory: what an older zjobs left is tightened
        done = subprocess.run([sys.executable, "-m", "zjobs", "keys", "generate", str(keys)],
                              cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert mode(keys) == 0o700
        assert {mode(p) for p in keys.glob("*.key_secret")} == {0o600}
        assert {mode(p) for p in keys.rglob("*.key")} == {0o644}
        assert len(list(keys.glob("*.key_secret"))) == len(ROLES)
        (keys / "broker.key_secret").chmod(0o644)
