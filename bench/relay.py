"""The limit: the fastest Python can move a job and its result through a broker.

A minimal pyzmq relay with no store and no bookkeeping beyond routing::

    client DEALER -> [frontend ROUTER] relay [backend ROUTER] <- worker DEALER(s)

Workers say ``READY`` once; the relay round-robins jobs among the workers it
knows and sends each result back to the client identity carried in the frames.
Jobs and results are msgpack bodies of the same shape and size as a zjobs
no-op job, so the numbers are a ceiling for zjobs on the same machine: zjobs
does the same moves plus a durable store, heartbeats and events.

Relay and workers run in separate processes (multiprocessing, spawn start
method so that no ZeroMQ context is ever inherited through fork); the client
runs in the calling process.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing as mp
import signal
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import msgpack
import zmq

LOOPBACK = "tcp://127.0.0.1"
READY = b"READY"
HWM = 100_000  # far above any window used here: a ROUTER silently drops at its HWM
DRAIN_BATCH = 256  # messages read per socket per poll wake-up
START_TIMEOUT_S = 30.0
WARMUP_JOBS = 200
PR_SET_PDEATHSIG = 1


def job_payload(i: int) -> bytes:
    """Encode job ``i`` like a zjobs no-op task job."""
    return msgpack.packb({"id": str(uuid.uuid4()), "task": "noop", "args": [i], "kwargs": {}})


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so that ``finally`` blocks close the sockets.

    Also ask Linux for that SIGTERM when the parent dies, so that a benchmark
    killed outright leaves no relay or worker behind (elsewhere a no-op).
    """

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _socket(ctx: zmq.Context, kind: int) -> zmq.Socket:
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    return sock


# --------------------------------------------------------------------------- relay


def _wait_for_workers(backend: zmq.Socket, n_workers: int) -> list[bytes]:
    workers: list[bytes] = []
    while len(workers) < n_workers:
        ident, command = backend.recv_multipart()
        if command == READY:
            workers.append(ident)
    return workers


def _drain_frontend(
    frontend: zmq.Socket, backend: zmq.Socket, workers: list[bytes], nxt: int
) -> int:
    """Forward waiting jobs ``[client, body]`` to workers round-robin; return the next index.

    Frames are read and written one by one rather than with ``*_multipart``:
    the shape of every message is known, and skipping the RCVMORE checks and
    list building is a measurable part of a relay that does nothing else.
    """
    n_workers = len(workers)
    for _ in range(DRAIN_BATCH):
        try:
            client = frontend.recv(zmq.NOBLOCK)
        except zmq.Again:
            break
        body = frontend.recv()
        backend.send(workers[nxt], zmq.SNDMORE)
        backend.send(client, zmq.SNDMORE)
        backend.send(body)
        nxt = (nxt + 1) % n_workers
    return nxt


def _drain_backend(backend: zmq.Socket, frontend: zmq.Socket, workers: list[bytes]) -> None:
    """Route results ``[worker, client, body]`` to their client; register ``[worker, READY]``."""
    for _ in range(DRAIN_BATCH):
        try:
            worker = backend.recv(zmq.NOBLOCK)
        except zmq.Again:
            break
        second = backend.recv()
        if backend.rcvmore:
            frontend.send(second, zmq.SNDMORE)
            frontend.send(backend.recv())
        elif second == READY and worker not in workers:
            workers.append(worker)


def _relay_loop(frontend: zmq.Socket, backend: zmq.Socket, workers: list[bytes]) -> None:
    poller = zmq.Poller()
    poller.register(frontend, zmq.POLLIN)
    poller.register(backend, zmq.POLLIN)
    nxt = 0
    while True:
        events = dict(poller.poll())
        if backend in events:
            _drain_backend(backend, frontend, workers)
        if frontend in events:
            nxt = _drain_frontend(frontend, backend, workers, nxt % len(workers))


def relay_main(conn: Connection, n_workers: int) -> None:
    """Relay process: bind both ROUTERs, report ports, wait for workers, then route."""
    _exit_on_sigterm()
    ctx = zmq.Context()
    frontend = _socket(ctx, zmq.ROUTER)
    backend = _socket(ctx, zmq.ROUTER)
    try:
        ports = (frontend.bind_to_random_port(LOOPBACK), backend.bind_to_random_port(LOOPBACK))
        conn.send(ports)
        workers = _wait_for_workers(backend, n_workers)
        conn.send("ready")
        _relay_loop(frontend, backend, workers)
    finally:
        frontend.close(linger=0)
        backend.close(linger=0)
        ctx.term()


# -------------------------------------------------------------------------- worker


def run_noop(job: dict[str, Any]) -> int:
    """The no-op task: identity on its one argument."""
    return job["args"][0]


def worker_main(backend_port: int) -> None:
    """Worker process: say READY once, then decode, run and answer every job."""
    _exit_on_sigterm()
    ctx = zmq.Context()
    sock = _socket(ctx, zmq.DEALER)
    try:
        sock.connect(f"{LOOPBACK}:{backend_port}")
        sock.send(READY)
        packb, unpackb = msgpack.packb, msgpack.unpackb
        while True:
            client = sock.recv()  # every job is [client, body]
            job = unpackb(sock.recv())
            result = {"id": job["id"], "ok": True, "result": run_noop(job)}
            sock.send(client, zmq.SNDMORE)
            sock.send(packb(result))
    finally:
        sock.close(linger=0)
        ctx.term()


# ------------------------------------------------------------------------- cluster


@dataclass
class Cluster:
    """A running relay and its workers, as seen from the client side."""

    frontend_port: int
    processes: list[BaseProcess]


def _stop(processes: list[BaseProcess]) -> None:
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)


def _recv_from(conn: Connection, what: str) -> Any:
    if not conn.poll(START_TIMEOUT_S):
        raise TimeoutError(f"relay did not report {what} within {START_TIMEOUT_S:.0f}s")
    return conn.recv()


@contextmanager
def relay_cluster(n_workers: int = 2) -> Iterator[Cluster]:
    """Start a relay and ``n_workers`` workers; stop them all on exit, even on error."""
    mpctx = mp.get_context("spawn")
    parent_conn, child_conn = mpctx.Pipe()
    processes: list[BaseProcess] = []
    try:
        relay = mpctx.Process(target=relay_main, args=(child_conn, n_workers), daemon=True)
        relay.start()
        processes.append(relay)
        frontend_port, backend_port = _recv_from(parent_conn, "its ports")
        for _ in range(n_workers):
            worker = mpctx.Process(target=worker_main, args=(backend_port,), daemon=True)
            worker.start()
            processes.append(worker)
        _recv_from(parent_conn, "its workers")
        yield Cluster(frontend_port, processes)
    finally:
        _stop(processes)
        parent_conn.close()
        child_conn.close()


@contextmanager
def _client(port: int) -> Iterator[zmq.Socket]:
    ctx = zmq.Context()
    sock = _socket(ctx, zmq.DEALER)
    try:
        sock.connect(f"{LOOPBACK}:{port}")
        yield sock
    finally:
        sock.close(linger=0)
        ctx.term()


# ------------------------------------------------------------------------ measures


def _pump(sock: zmq.Socket, n_jobs: int, window: int) -> int:
    """Keep up to ``window`` jobs in flight until ``n_jobs`` results are back; sum results."""
    sent = received = total = 0
    unpackb = msgpack.unpackb
    while received < n_jobs:
        while sent < n_jobs and sent - received < window:
            sock.send(job_payload(sent))
            sent += 1
        reply = unpackb(sock.recv())
        if not reply["ok"]:
            raise RuntimeError(f"job {reply['id']} failed")
        total += reply["result"]
        received += 1
    return total


def run_relay_throughput(n_jobs: int, n_workers: int = 2, window: int = 1000) -> dict[str, Any]:
    """Jobs/s through the relay, from the first submit to the last result collected."""
    with relay_cluster(n_workers) as cluster, _client(cluster.frontend_port) as sock:
        _pump(sock, min(WARMUP_JOBS, n_jobs), window)
        start = time.perf_counter()
        total = _pump(sock, n_jobs, window)
        seconds = time.perf_counter() - start
    if total != n_jobs * (n_jobs - 1) // 2:
        raise RuntimeError("relay returned wrong results")
    return {
        "name": "relay",
        "jobs": n_jobs,
        "workers": n_workers,
        "window": window,
        "seconds": seconds,
        "jobs_per_s": n_jobs / seconds,
    }


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    index = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def _round_trips(sock: zmq.Socket, n_jobs: int) -> list[float]:
    """Round-trip time in ms of ``n_jobs`` jobs sent one at a time."""
    samples: list[float] = []
    for i in range(n_jobs):
        start = time.perf_counter()
        sock.send(job_payload(i))
        reply = msgpack.unpackb(sock.recv())
        samples.append((time.perf_counter() - start) * 1000)
        if reply["result"] != i:
            raise RuntimeError("relay returned a wrong result")
    return samples


def run_relay_latency(n_jobs: int = 2000, n_workers: int = 2) -> dict[str, Any]:
    """Submit-to-result latency with one job in flight at a time."""
    with relay_cluster(n_workers) as cluster, _client(cluster.frontend_port) as sock:
        _round_trips(sock, min(WARMUP_JOBS, n_jobs))
        samples = sorted(_round_trips(sock, n_jobs))
    return {
        "name": "relay",
        "jobs": n_jobs,
        "p50_ms": _percentile(samples, 50),
        "p95_ms": _percentile(samples, 95),
        "p99_ms": _percentile(samples, 99),
        "mean_ms": statistics.fmean(samples),
    }


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="jobs for the throughput run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--window", type=int, default=1000, help="jobs in flight")
    parser.add_argument("--latency-n", type=int, default=2000, help="jobs for the latency run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args()


def main() -> None:
    args = _parse_args()
    throughput = run_relay_throughput(args.n, args.workers, args.window)
    latency = run_relay_latency(args.latency_n, args.workers)
    if args.json:
        print(json.dumps({"throughput": throughput, "latency": latency}))
        return
    print(
        f"relay throughput: {throughput['jobs']} jobs, {throughput['workers']} workers, "
        f"window {throughput['window']}: {throughput['seconds']:.3f} s, "
        f"{throughput['jobs_per_s']:,.0f} jobs/s"
    )
    print(
        f"relay latency over {latency['jobs']} jobs: p50 {latency['p50_ms']:.3f} ms, "
        f"p95 {latency['p95_ms']:.3f} ms, p99 {latency['p99_ms']:.3f} ms, "
        f"mean {latency['mean_ms']:.3f} ms"
    )


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        main()
