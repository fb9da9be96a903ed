"""The zjobs scenarios: throughput, latency, scale and HTTP. Each returns a plain dict."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import shutil
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from zjobs import AsyncClient, Client

from .cluster import bench_cluster

Progress = Callable[[float], None]
WAIT_CHUNK = 10_000


def _noop_jobs(start: int, count: int, task: str = "noop") -> list[dict[str, Any]]:
    return [{"task": task, "args": [i]} for i in range(start, start + count)]


def _submit_and_collect(client: Client, n_jobs: int, task: str, progress: Progress,
                        batch: int = 10_000) -> float:
    """Submit `n_jobs` in batches, then collect every result; seconds from first submit to last."""
    started = time.perf_counter()
    ids: list[str] = []
    for start in range(0, n_jobs, batch):
        ids += client.submit_many(_noop_jobs(start, min(batch, n_jobs - start), task))
        progress(0.5 * len(ids) / n_jobs)
    checked = 0
    for start in range(0, n_jobs, WAIT_CHUNK):
        jobs = client.wait_many(ids[start:start + WAIT_CHUNK], timeout=600)
        for offset, job in enumerate(jobs):
            if job["status"] != "succeeded" or job["result"] != start + offset:
                raise RuntimeError(f"job {job['id']} ended {job['status']}: {job.get('error')}")
        checked += len(jobs)
        progress(0.5 + 0.5 * checked / n_jobs)
    return time.perf_counter() - started


def throughput(n_jobs: int, workers: int, progress: Progress, *, task: str = "noop",
               concurrency: int = 256, store: str | None = None) -> dict[str, Any]:
    slots = {"async_concurrency": concurrency} if task == "noop" else {"concurrency": concurrency}
    with bench_cluster(workers, store=store, **slots) as cluster, cluster.client() as client:
        meter = cluster.cpu_meter().start()
        seconds = _submit_and_collect(client, n_jobs, task, progress)
        cpu = meter.stop(n_jobs)
    name = {"noop": "zjobs", "noop_sync": "zjobs (sync pool)",
            "noop_thread": "zjobs (sync, pool=\"thread\")"}.get(task, f"zjobs ({task})")
    where = "PostgreSQL" if store else "SQLite"
    if store:
        name += " on PostgreSQL"
    return {"name": name, "jobs": n_jobs, "seconds": round(seconds, 3),
            "jobs_per_s": round(n_jobs / seconds, 1), "workers": workers, "cpu_us_per_job": cpu,
            "note": f"durable {where} store, {workers} workers x concurrency {concurrency}, "
                    f"task `{task}`"}


USER_IN_FLIGHT = 2000  # jobs a user's asyncio client has submitted and awaits at a time
USER_BATCH = 1000


def user_case(n_jobs: int, workers: int, progress: Progress, *,
              per_job: bool = False) -> dict[str, Any]:
    """What users write: plain `def` no-op tasks on workers with their default settings, and
    an asyncio client that submits (in batches of 1,000, or one `submit` per job) and then
    awaits each job's `result()`, 2,000 in flight."""
    with bench_cluster(workers, None) as cluster:
        meter = cluster.cpu_meter().start()
        seconds = asyncio.run(_user_client(cluster.frontend, n_jobs, per_job, progress))
        cpu = meter.stop(n_jobs)
    how = "one submit per job" if per_job else f"submit_many in batches of {USER_BATCH}"
    return {"name": "zjobs, user's case" + (" (submit per job)" if per_job else ""),
            "jobs": n_jobs, "seconds": round(seconds, 3),
            "jobs_per_s": round(n_jobs / seconds, 1), "workers": workers, "cpu_us_per_job": cpu,
            "note": f"durable SQLite store, {workers} workers with default settings, plain "
                    f"`def` task `noop_sync`; asyncio client: {how}, then `await result()` "
                    f"per job, {USER_IN_FLIGHT} in flight"}


async def _user_client(frontend: str, n_jobs: int, per_job: bool, progress: Progress) -> float:
    async with AsyncClient(frontend, timeout=120) as client:
        started = time.perf_counter()
        for start in range(0, n_jobs, USER_IN_FLIGHT):
            window = range(start, min(start + USER_IN_FLIGHT, n_jobs))
            if per_job:
                ids = await asyncio.gather(*(client.submit("noop_sync", i) for i in window))
            else:
                ids = [job_id for first in range(window.start, window.stop, USER_BATCH)
                       for job_id in await client.submit_many(
                           _noop_jobs(first, min(USER_BATCH, window.stop - first),
                                      "noop_sync"))]
            results = await asyncio.gather(*(client.result(job_id) for job_id in ids))
            if list(results) != list(window):
                raise RuntimeError(f"wrong results in the window from job {start}")
            progress(window.stop / n_jobs)
        return time.perf_counter() - started


def _percentiles(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)

    def pick(q: float) -> float:
        return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000, 3)

    return {"p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
            "max_ms": round(ordered[-1] * 1000, 3)}


def latency(n_jobs: int, workers: int, progress: Progress) -> dict[str, Any]:
    """One job at a time: submit, then wait for its result. The round trip of one job.

    Alternating with it, the same with `run` (SUBMIT with wait: one round trip), so that
    both are measured on the same machine at the same time."""
    samples: dict[tuple[str, str], list[float]] = {
        (how, task): [] for how in ("submit", "run") for task in ("noop", "noop_sync")}
    with bench_cluster(workers) as cluster, cluster.client() as client:
        for i in range(50):  # warm-up: connections, pool, SQLite pages
            client.result(client.submit("noop", i), timeout=30)
            client.result(client.submit("noop_sync", i), timeout=30)
        for i in range(n_jobs):
            for task in ("noop", "noop_sync"):  # alternating: the same moments for each
                started = time.perf_counter()
                client.result(client.submit(task, i), timeout=30)
                samples["submit", task].append(time.perf_counter() - started)
                started = time.perf_counter()
                client.run(task, i, timeout=30)
                samples["run", task].append(time.perf_counter() - started)
            if i % 100 == 0:
                progress(i / n_jobs)
    return {"name": "zjobs", "jobs": n_jobs, **_percentiles(samples["submit", "noop"]),
            "samples_ms": [round(s * 1000, 4) for s in samples["submit", "noop"]],
            "run": {"jobs": n_jobs, **_percentiles(samples["run", "noop"])},
            "user": {"jobs": n_jobs, **_percentiles(samples["submit", "noop_sync"]),
                     "run": {"jobs": n_jobs, **_percentiles(samples["run", "noop_sync"])}}}


def scale(sizes: list[int], workers: int, progress: Progress) -> dict[str, Any]:
    """For each size N: queue N jobs with no worker attached (the broker's RSS at N/10 and
    at N), restart the broker (the seconds until it answers STATS, its RSS then), then drain
    them with `workers` workers. A size the disk cannot hold is not run (`stopped`)."""
    rows: list[dict[str, Any]] = []
    stopped = None
    with bench_cluster(0) as cluster:
        for index, size in enumerate(sizes):
            def step(f: float, i: int = index) -> None:
                progress((i + f) / len(sizes))
            room = _room_for(cluster, size, sum(row["queued"] for row in rows))
            if room is not None:
                stopped = room
                break
            rows.append(_fill_restart_drain(cluster, size, workers, step))
    return {"name": "zjobs", "rows": rows, "stopped": stopped}


DISK_MARGIN = 2.0  # a size runs if twice its estimated bytes are free


def _room_for(cluster: Any, size: int, stored: int) -> str | None:
    """Why `size` more jobs would not fit on the store's disk (None: they would). The bytes a
    job takes are measured on the jobs stored so far (1 KiB each before any)."""
    used = sum(path.stat().st_size for path in cluster.data_dir.glob("zjobs.db*"))
    per_job = used / stored if stored else 1024
    free = shutil.disk_usage(cluster.data_dir).free
    needed = size * per_job * DISK_MARGIN
    if needed <= free:
        return None
    return (f"{size:,} jobs need about {needed / 2**30:.1f} GiB ({per_job:.0f} bytes a job, "
            f"x{DISK_MARGIN}), {free / 2**30:.1f} GiB free")


SCALE_BATCH = 20_000


def _fill_restart_drain(cluster: Any, size: int, workers: int,
                        progress: Progress) -> dict[str, Any]:
    with cluster.client(timeout=600) as client:
        done_before = client.stats()["jobs"]["succeeded"]
        started = time.perf_counter()
        rss_tenth = None
        for start in range(0, size, SCALE_BATCH):
            client.submit_many(_noop_jobs(start, min(SCALE_BATCH, size - start)))
            if rss_tenth is None and start + SCALE_BATCH >= size // 10:
                rss_tenth = cluster.broker_rss_mib()
            progress(0.4 * min(start + SCALE_BATCH, size) / size)
        submit_s = time.perf_counter() - started
        rss_queued, rss_peak = cluster.broker_rss_mib(), cluster.broker_rss_peak_mib()
    restart_s = cluster.restart_broker()
    rss_restarted = cluster.broker_rss_mib()
    cluster.start_workers(workers, async_concurrency=256)
    with cluster.client(timeout=600) as client:
        started = time.perf_counter()
        while (done := client.stats()["jobs"]["succeeded"] - done_before) < size:
            progress(0.4 + 0.6 * done / size)
            time.sleep(0.2)  # noqa - the poll interval of a measurement, not synchronisation
        drain_s = time.perf_counter() - started
    cluster.stop_workers()
    return {"queued": size, "submit_per_s": round(size / submit_s, 1),
            "drain_per_s": round(size / drain_s, 1),
            "rss_tenth_mib": round(rss_tenth or rss_queued, 1),
            "rss_queued_mib": round(rss_queued, 1), "rss_peak_mib": round(rss_peak, 1),
            "restart_s": round(restart_s, 2), "rss_restarted_mib": round(rss_restarted, 1),
            "rss_peak_after_drain_mib": round(cluster.broker_rss_peak_mib(), 1)}


# ---------------------------------------------------------------- HTTP


API_PROCESSES = (1, 2)  # the SSE lag with the default API, then with `--api-workers 2`


def http(n_submits: int, concurrency: int, sse_clients: int, sse_jobs: int,
         progress: Progress) -> dict[str, Any]:
    rows = []
    for i, n_api in enumerate(API_PROCESSES):
        with bench_cluster(2, async_concurrency=256, api=True, api_workers=n_api) as cluster:
            base = f"http://127.0.0.1:{cluster.http_port}"
            if i == 0:
                submit = asyncio.run(_rest_submits(base, n_submits, concurrency, progress))
            lag = asyncio.run(_sse_lag(base, cluster, sse_clients, sse_jobs, progress))
            rows.append({"api_workers": n_api, **lag})
    return {"name": "zjobs", **submit, **rows[0], "sse": rows}


async def _rest_submits(base: str, n: int, concurrency: int, progress: Progress) -> dict:
    import httpx

    done = 0

    async def one_client(count: int) -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            for i in range(count):
                response = await http.post("/jobs", json={"task": "noop", "args": [i]})
                response.raise_for_status()
                done += 1
                if done % 200 == 0:
                    progress(0.3 * done / n)

    started = time.perf_counter()
    await asyncio.gather(*(one_client(n // concurrency) for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    total = (n // concurrency) * concurrency
    return {"rest_submits": total, "rest_clients": concurrency,
            "rest_submit_per_s": round(total / seconds, 1)}


def run_jobs(frontend: str, events: str, n_jobs: int) -> float:
    """Submit and collect `n_jobs` no-op jobs (in a process of its own); seconds taken."""
    with Client(frontend, timeout=120, events_endpoint=events) as client:
        return _submit_and_collect(client, n_jobs, "noop", lambda f: None)


async def _sse_lag(base: str, cluster: Any, n_clients: int, n_jobs: int,
                   progress: Progress) -> dict:
    """`n_clients` follow /events while `n_jobs` run; the worst publish-to-arrival lag."""
    import httpx

    expected = {"job.succeeded": n_jobs}
    lags: list[float] = []
    ready = asyncio.Event()
    connected = 0

    async def follow(http: httpx.AsyncClient) -> float:
        """The worst lag this client saw. Per chunk, only the oldest event is decoded (it has
        the chunk's largest lag), and events are counted, not parsed: the measuring client
        must not become the bottleneck."""
        nonlocal connected
        worst, seen, buffer, live = 0.0, 0, b"", False
        async with http.stream("GET", "/events", params={"types": "job.succeeded"}) as stream:
            async for chunk in stream.aiter_raw():
                arrived = time.time()
                buffer += chunk
                cut = buffer.rfind(b"\r\n\r\n") + 4
                if cut < 4:
                    continue
                complete, buffer = buffer[:cut], buffer[cut:]
                if not live and b": live\r\n" in complete:
                    live = True
                    if (connected := connected + 1) == n_clients:
                        ready.set()
                count = complete.count(b"\r\ndata: ")
                if count:
                    start = complete.index(b"\r\ndata: ") + 8
                    data = complete[start:complete.index(b"\r\n", start)]
                    worst = max(worst, arrived - json.loads(data)["ts"])
                    seen += count
                    if seen >= expected["job.succeeded"]:
                        return worst
        return worst

    limits = httpx.Limits(max_connections=n_clients + 10)
    async with httpx.AsyncClient(base_url=base, timeout=None, limits=limits) as http:
        followers = [asyncio.create_task(follow(http)) for _ in range(n_clients)]
        await asyncio.wait_for(ready.wait(), 60)
        # The jobs are submitted from another process: in this one they would share a GIL
        # with the 100 followers, and the lag measured would be the measurer's own.
        started = time.perf_counter()
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            await asyncio.get_running_loop().run_in_executor(
                pool, run_jobs, cluster.frontend, cluster.events, n_jobs)
        run_s = time.perf_counter() - started
        progress(1.0)
        lags = await asyncio.wait_for(asyncio.gather(*followers), 120)
    return {"sse_clients": n_clients, "sse_jobs": n_jobs, "sse_run_s": round(run_s, 3),
            "sse_max_lag_s": round(max(lags), 3), "sse_median_client_lag_s":
            round(statistics.median(lags), 3)}
