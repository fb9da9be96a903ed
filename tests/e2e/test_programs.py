"""`exec` and `function` jobs end to end through the Python client."""

from __future__ import annotations

import socket
import textwrap

import pytest

from tests.cluster import Cluster
from tests.processes import marked, new_marker
from tests.waiting import wait_until
from zjobs import FunctionError, JobCancelled, JobFailed

MAIN = textwrap.dedent("""
    import os, sys
    data = open("numbers.txt").read().split()
    for n in data:
        print(f"n={n}")
        print(f"err {n}", file=sys.stderr)
    os.makedirs("out/sub", exist_ok=True)
    open("out/sub/result.bin", "wb").write(bytes(range(256)) * 4)
    print("done")
""")

SPAWNER = textwrap.dedent("""
    import signal, subprocess, sys
    for _ in range(2):
        subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()", sys.argv[1]])
    print("spawned", flush=True)
    signal.pause()  # until the worker kills it
""")


@pytest.fixture
def programs(cluster: Cluster) -> Cluster:
    cluster.start_worker("runner", "--allow-exec", "--allow-pickle")
    return cluster


def test_exec_job_streams_output_and_returns_artifacts(programs: Cluster) -> None:
    client = programs.client()
    job_id = client.submit_exec("main.py", {"main.py": MAIN.encode()},
                                input_files={"numbers.txt": b"1 2 3"}, timeout_s=30)
    job = client.wait(job_id, timeout=30)
    assert job["status"] == "succeeded", job["error"]
    lines = [(line["stream"], line["data"]) for line in client.logs(job_id)]
    stdout = [data for stream, data in lines if stream == "stdout"]
    stderr = [data for stream, data in lines if stream == "stderr"]
    assert stdout == ["n=1", "n=2", "n=3", "done"]
    assert stderr == ["err 1", "err 2", "err 3"]
    assert [a["name"] for a in client.artifacts(job_id)] == ["sub/result.bin"]
    assert client.download(job_id, "sub/result.bin")["data"] == bytes(range(256)) * 4


@pytest.mark.parametrize("stop", ["timeout", "cancel"])
def test_program_and_its_children_are_killed(programs: Cluster, stop: str) -> None:
    client = programs.client()
    marker = new_marker()
    job_id = client.submit_exec("spawn.py", {"spawn.py": SPAWNER.encode()}, args=[marker],
                                timeout_s=6 if stop == "timeout" else None)
    wait_until(lambda: len(marked(marker)) == 3, 20, message="the program and its children up")
    if stop == "cancel":
        client.cancel(job_id)
        with pytest.raises(JobCancelled):
            client.result(job_id, timeout=20)
    else:
        with pytest.raises(JobFailed) as caught:
            client.result(job_id, timeout=30)
        assert caught.value.error["type"] == "Timeout"
    wait_until(lambda: not marked(marker), 15, message="no process left")
    assert client.result(client.submit("add", 1, 1), timeout=20) == 2


@pytest.mark.parametrize("name", ["../escape.py", "/tmp/abs.py", "a/../../b.py"])
def test_path_traversal_names_are_refused(programs: Cluster, name: str) -> None:
    client = programs.client()
    with pytest.raises(JobFailed) as caught:
        client.result(client.submit_exec(name, {name: b"print(1)"}), timeout=20)
    assert caught.value.error["type"] == "ExecError"


def test_net_policy_none_cannot_reach_the_host(programs: Cluster) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    probe = textwrap.dedent(f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
            print("connected")
        except OSError as exc:
            print("blocked", type(exc).__name__)
    """).encode()
    client = programs.client()
    try:
        open_job = client.submit_exec("probe.py", {"probe.py": probe})
        client.result(open_job, timeout=20)
        assert [line["data"] for line in client.logs(open_job)] == ["connected"]
        closed = client.submit_exec("probe.py", {"probe.py": probe}, net_policy="none")
        job = client.wait(closed, timeout=20)
        if job["status"] == "failed":  # a host that cannot isolate must refuse, not run open
            assert "net_policy" in job["error"]["message"]
        else:
            assert client.logs(closed)[0]["data"].startswith("blocked")
    finally:
        listener.close()


def test_map_returns_results_in_input_order(programs: Cluster) -> None:
    client = programs.client(timeout=30)
    offset = 7
    assert client.map(lambda x: x * x + offset, range(1000)) == [x * x + 7 for x in range(1000)]
    assert client.map(str.upper, ["a", "b", "c"], chunksize=2) == ["A", "B", "C"]


def test_map_error_names_the_item_and_carries_the_traceback(programs: Cluster) -> None:
    client = programs.client()

    def picky(x: int) -> int:
        if x == 13:
            raise ValueError("unlucky")
        return x

    with pytest.raises(FunctionError) as caught:
        client.map(picky, range(20), chunksize=4)
    assert caught.value.index == 13
    assert "unlucky" in caught.value.remote_traceback
    assert "picky" in caught.value.remote_traceback


def test_submit_function(programs: Cluster) -> None:
    client = programs.client()
    job_id = client.submit_function(lambda a, b=1: {"sum": a + b}, 2, b=5)
    assert client.result(job_id, timeout=20) == {"sum": 7}


def test_jobs_needing_a_flag_wait_for_a_worker_that_has_it(cluster: Cluster) -> None:
    cluster.start_worker("plain")
    client = cluster.client()
    program = client.submit_exec("main.py", {"main.py": b"print(1)"})
    function = client.submit_function(abs, -1)
    wait_until(lambda: client.stats()["queues"]["default"]["unserved"] == 2, 10,
               message="both jobs counted as unserved")
    assert [client.get(j)["attempts"] for j in (program, function)] == [0, 0]
    cluster.start_worker("pickler", "--allow-pickle")
    assert client.result(function, timeout=20) == 1
    assert client.get(program)["status"] == "queued"
