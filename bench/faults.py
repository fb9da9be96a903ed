"""`zjobs bench faults`: what a fault costs under load, counted from the jobs' own side effects.

A steady load of sync `record` jobs (each appends its number to a file, so
executions are counted by the workers' own effect, not by what the broker
says) runs while one fault is injected. Afterwards every acknowledged job
must be terminal; the report says, per fault:

- acknowledged: jobs whose submit was answered (the broker promised them);
- lost: acknowledged jobs that are missing or never ended (must be 0);
- executed twice: jobs whose number is in the file more than once;
- failed without running: failed jobs whose number is not in the file (must be 0);
- client errors: submits that raised (a broker outage shows here, as it should);
- broker RSS before and after;
- for the attacks on the frontend (decode bombs, replies nobody reads, one client's flood),
  what the attack observed: the slowest PING of another client meanwhile, replies dropped.
"""

from __future__ import annotations

import os
import random
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from zjobs import BrokerError, Client
from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.jobs import TERMINAL

from .cluster import BenchCluster, _pings, _until

HEARTBEAT_S = 0.25
LIVENESS = 3
DEAD_AFTER_S = HEARTBEAT_S * LIVENESS
LOAD_S = 6.0
BATCH = 10
GARBAGE = 10_000
BOMBS_EACH = 2
UNREAD_LISTS = 5000
# Replies that reach a client that does not read: its own queue (ZeroMQ's default 1,000),
# the broker's queue to it (1,000), and what the kernel's socket buffers hold.
UNREAD_DELIVERED = 2200
FLOOD_PINGS = 20_000


class Load(threading.Thread):
    """Submits batches of `record` jobs until stopped; keeps the acknowledged ones."""

    def __init__(self, frontend: str, path: str) -> None:
        super().__init__(daemon=True)
        self.frontend, self.path = frontend, path
        self.acked: dict[int, str] = {}        # job number -> id
        self.errors = 0
        self._next = 0
        self._halt = threading.Event()

    def run(self) -> None:
        with Client(self.frontend, timeout=2.0) as client:
            while not self._halt.is_set():
                numbers = list(range(self._next, self._next + BATCH))
                self._next += BATCH
                try:
                    ids = client.submit_many({"task": "record", "args": [self.path, n]}
                                             for n in numbers)
                except (TimeoutError, BrokerError):
                    self.errors += 1
                    self._halt.wait(0.2)
                    continue
                self.acked.update(zip(numbers, ids, strict=True))
                self._halt.wait(0.02)

    def stop(self) -> None:
        self._halt.set()
        self.join(30)


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """The process's resident set (or with `VmHWM`, its peak), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith(field))
    return round(int(line.split()[1]) / 1024, 1)


class FaultCluster(BenchCluster):
    def __init__(self, data_dir: str) -> None:
        super().__init__(data_dir)
        self.env.update(ZJOBS_HEARTBEAT_INTERVAL=str(HEARTBEAT_S),
                        ZJOBS_HEARTBEAT_LIVENESS=str(LIVENESS))

    def start_broker(self) -> None:
        self.start("broker", "broker")
        with self.client(timeout=5) as client:
            _until(lambda: _pings(client), 30)

    def start_worker(self, index: int) -> None:
        self.start(f"worker-{index}", "worker", "--name", f"fault-{index}", "--concurrency", "2")

    def wait_workers(self, n: int) -> None:
        with self.client(timeout=5) as client:
            _until(lambda: len(client.workers()) >= n, 60)

    def signal(self, name: str, sig: int) -> None:
        os.killpg(self.procs[name].pid, sig)
        if sig == signal.SIGKILL:
            self.procs[name].wait(15)


# ---------------------------------------------------------------- the faults


def kill_workers(cluster: FaultCluster) -> None:
    """SIGKILL worker 0's process group mid-run, 3 times; restart it each time."""
    for _ in range(3):
        time.sleep(1.0)
        cluster.signal("worker-0", signal.SIGKILL)
        cluster.start_worker(0)


def kill_broker(cluster: FaultCluster) -> None:
    """SIGKILL the broker under load, 3 times; restart it on the same store."""
    for _ in range(3):
        time.sleep(1.0)
        cluster.signal("broker", signal.SIGKILL)
        cluster.start_broker()


def stall_worker(cluster: FaultCluster) -> None:
    """SIGSTOP worker 0 (and its pool) for 3 x the heartbeat timeout, then SIGCONT."""
    time.sleep(1.0)
    cluster.signal("worker-0", signal.SIGSTOP)
    time.sleep(3 * DEAD_AFTER_S)
    cluster.signal("worker-0", signal.SIGCONT)


def garbage(cluster: FaultCluster) -> None:
    """10,000 malformed messages on each ROUTER while the load runs."""
    ctx = zmq.Context.instance()
    rng = random.Random(7)
    for endpoint, header in ((cluster.frontend, b"ZJC1"), (cluster.backend, b"ZJW1")):
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(endpoint)
        for i in range(GARBAGE):
            frames = [rng.randbytes(rng.randint(0, 64)) for _ in range(rng.randint(1, 4))]
            if i % 3 == 0:
                frames[0] = header  # a valid header with a garbage command or body
            sock.send_multipart(frames)
        sock.close()


# ---------------------------------------------------------------- attacks on the frontend


class Pinger(threading.Thread):
    """PINGs a broker one after another (from a client of its own) until stopped; keeps the
    slowest answer. A PING that fails is kept in `failure`."""

    def __init__(self, frontend: str) -> None:
        super().__init__(daemon=True)
        self.frontend = frontend
        self.slowest_s = 0.0
        self.pings = 0
        self.failure: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        with Client(self.frontend, timeout=30.0) as client:
            while not self._halt.is_set():
                started = time.monotonic()
                try:
                    client.ping()
                except BaseException as exc:  # the caller reads it after stop()
                    self.failure = exc
                    return
                self.slowest_s = max(self.slowest_s, time.monotonic() - started)
                self.pings += 1
                self._halt.wait(0.05)

    def started(self) -> Pinger:
        """Start, and return once the first PING is answered."""
        self.start()
        deadline = time.monotonic() + 30
        while self.pings == 0 and self.failure is None and time.monotonic() < deadline:
            self._halt.wait(0.02)
        return self

    def stop(self) -> float:
        """Stop; the slowest PING in seconds."""
        self._halt.set()
        self.join(60)
        return self.slowest_s


def _array(count: int) -> bytes:
    return b"\xdd" + count.to_bytes(4, "big")


def decode_bomb(kind: str, max_message: int = p.DEFAULT_MAX_MESSAGE) -> bytes:
    """A SUBMIT body that fills the message limit with empty containers: one array of them
    (`array of empty arrays`, `array of empty maps`), or a well-formed job whose `args` (or
    `kwargs`) holds 16 arrays of a million each (`nested arrays in args`, `nested maps in
    kwargs`): no array is long, together they are 16 million."""
    room = max_message - 128  # the other frames of the request
    empty = b"\x80" if "maps" in kind else b"\x90"
    if kind.startswith("array of"):
        return _array(room - 5) + empty * (room - 5)
    count = room // 16 - 64
    holder = _array(16) + (_array(count) + empty * count) * 16
    key = "kwargs" if "kwargs" in kind else "args"
    if key == "kwargs":
        holder = b"\x81" + p.pack("data") + holder
    head = p.pack({"task": "noop", "queue": "bomb"})
    return b"\x83" + head[1:] + p.pack(key) + holder


BOMB_KINDS = ("array of empty arrays", "array of empty maps", "nested arrays in args",
              "nested maps in kwargs")


def _dealer(endpoint: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(endpoint)
    return sock


def bombs(cluster: FaultCluster) -> dict[str, Any]:
    """Two 16 MiB decode bombs of each kind, one after another, while the load runs."""
    pinger = Pinger(cluster.frontend).started()
    sock = _dealer(cluster.frontend)
    codes: Counter[str] = Counter()
    try:
        for kind in BOMB_KINDS:
            body = decode_bomb(kind)
            for _ in range(BOMBS_EACH):
                sock.send_multipart([p.CLIENT_HEADER, p.SUBMIT, b"bomb", body])
                reply = p.decode_reply(sock.recv_multipart()) if sock.poll(120_000) else None
                codes["no reply" if reply is None else reply.body.get("code", "ok")] += 1
    finally:
        sock.close(linger=0)
    return {"slowest_ping_s": round(pinger.stop(), 3), "answers": dict(codes),
            "broker_peak_rss_mib": rss_mib(cluster.procs["broker"].pid, "VmHWM")}


def unread_replies(cluster: FaultCluster) -> dict[str, Any]:
    """5,000 `LIST {limit: 1000}` of 300 kB replies from a client that never reads them."""
    with cluster.client(timeout=30) as client:
        client.submit_many({"task": "record", "args": ["/dev/null", 0], "queue": "nobody",
                            "kwargs": {"pad": "x" * 15_000}} for _ in range(20))
    pinger = Pinger(cluster.frontend).started()
    sock = _dealer(cluster.frontend)
    try:
        request = [p.CLIENT_HEADER, p.LIST, b"unread", p.pack({"limit": 1000,
                                                               "queue": "nobody"})]
        for _ in range(UNREAD_LISTS):
            sock.send_multipart(request)
        with cluster.client(timeout=30) as client:
            # worked through: all dropped but what the queues between the two can hold
            _until(lambda: _dropped(client) >= UNREAD_LISTS - UNREAD_DELIVERED, 600)
            dropped = _dropped(client)
    finally:
        sock.close(linger=0)
    return {"slowest_ping_s": round(pinger.stop(), 3), "dropped_replies": dropped,
            "broker_peak_rss_mib": rss_mib(cluster.procs["broker"].pid, "VmHWM")}


def _dropped(client: Client) -> int:
    return client.stats()["counters"]["dropped_replies"]


def flood(cluster: FaultCluster) -> dict[str, Any]:
    """20,000 PINGs sent at once by one client, then read (2,000 of them used to make one
    turn)."""
    pinger = Pinger(cluster.frontend).started()
    sock = _dealer(cluster.frontend)
    sock.sndhwm = sock.rcvhwm = FLOOD_PINGS
    answered = 0
    try:
        for index in range(FLOOD_PINGS):
            sock.send_multipart(p.encode_request(p.PING, index.to_bytes(4, "big"), {}))
        while answered < FLOOD_PINGS and sock.poll(30_000):
            sock.recv_multipart()
            answered += 1
    finally:
        sock.close(linger=0)
    return {"slowest_ping_s": round(pinger.stop(), 3), "answered": answered,
            "broker_peak_rss_mib": rss_mib(cluster.procs["broker"].pid, "VmHWM")}


CASES: dict[str, Callable[[FaultCluster], dict[str, Any] | None]] = {
    "worker SIGKILL x3": kill_workers,
    "broker SIGKILL x3": kill_broker,
    "worker SIGSTOP 3x timeout": stall_worker,
    "workers 3 s before the broker": lambda cluster: None,
    "10,000 garbage messages per ROUTER": garbage,
    "8 decode bombs of 16 MiB": bombs,
    "5,000 LISTs whose replies nobody reads": unread_replies,
    "20,000 PINGs at once from one client": flood,
}


# ---------------------------------------------------------------- one case


def run_case(name: str, fault: Callable[[FaultCluster], dict[str, Any] | None]
             ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="zjobs-faults-") as tmp:
        cluster = FaultCluster(str(Path(tmp) / "store"))
        executions = str(Path(tmp) / "executions")
        try:
            if name.startswith("workers 3 s"):
                cluster.start_worker(0)
                cluster.start_worker(1)
                time.sleep(3.0)  # the fault itself: workers up and retrying, no broker yet
                cluster.start_broker()
            else:
                cluster.start_broker()
                cluster.start_worker(0)
                cluster.start_worker(1)
            cluster.wait_workers(2)
            rss_before = rss_mib(cluster.procs["broker"].pid)
            load = Load(cluster.frontend, executions)
            started = time.monotonic()
            load.start()
            observed = fault(cluster)
            time.sleep(max(LOAD_S - (time.monotonic() - started), 0))
            load.stop()
            jobs = _final_states(cluster, load.acked)
            rss_after = rss_mib(cluster.procs["broker"].pid)
        finally:
            cluster.close()
        row = _count(name, load, jobs, _executions(executions), rss_before, rss_after)
        return {**row, "observed": observed} if observed else row


def _final_states(cluster: FaultCluster, acked: dict[int, str]) -> dict[int, dict | None]:
    """Every acknowledged job once terminal (up to 120 s); None for one the broker lacks."""
    by_id = {job_id: n for n, job_id in acked.items()}
    found: dict[int, dict | None] = {}
    with cluster.client(timeout=30) as client:
        ids = list(by_id)
        for start in range(0, len(ids), 2000):
            chunk = ids[start:start + 2000]
            try:
                jobs = client.wait_many(chunk, timeout=120)
            except BrokerError:
                jobs = [_get_or_none(client, job_id) for job_id in chunk]
            for job_id, job in zip(chunk, jobs, strict=True):
                found[by_id[job_id]] = job
    return found


def _get_or_none(client: Client, job_id: str) -> dict | None:
    try:
        return client.get(job_id)
    except BrokerError:
        return None


def _executions(path: str) -> Counter[int]:
    if not os.path.exists(path):
        return Counter()
    return Counter(int(line) for line in Path(path).read_text().split())


def _count(name: str, load: Load, jobs: dict[int, dict | None], runs: Counter[int],
           rss_before: float, rss_after: float) -> dict[str, Any]:
    lost = [n for n, job in jobs.items() if job is None or job["status"] not in TERMINAL]
    failed = [n for n, job in jobs.items() if job is not None and job["status"] == "failed"]
    return {
        "case": name, "acknowledged": len(jobs), "lost": len(lost),
        "executed_twice": sum(1 for n in jobs if runs[n] > 1),
        "failed_without_running": sum(1 for n in failed if runs[n] == 0),
        "failed": len(failed), "client_errors": load.errors,
        "rss_before_mib": rss_before, "rss_after_mib": rss_after,
    }


def faults(progress: Callable[[float], None]) -> dict[str, Any]:
    rows = []
    for index, (name, fault) in enumerate(CASES.items()):
        rows.append(run_case(name, fault))
        progress((index + 1) / len(CASES))
    return {"rows": rows, "note": f"sync `record` jobs, 2 workers x concurrency 2, heartbeat "
                                  f"{HEARTBEAT_S} s x liveness {LIVENESS}, ~{LOAD_S:g} s of load"}
