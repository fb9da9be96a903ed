"""Prometheus metrics, one CollectorRegistry per app.

At scrape time (`GET /metrics`) the broker's STATS fill the gauges (jobs
by state and by queue and state, live workers, throughput) and its
counters (submitted, finished by status, retried); `zjobs_broker_up` is 0
when the broker does not answer, and the rest of the scrape still works.
Histograms come from the events the hub sees: queue wait is the time from
a job's enqueue (`job.submitted`, the `run_at` of `job.scheduled`, the next
attempt of `job.retrying`) to `job.started`; run time is `job.started` to
its terminal event. The API's own counters say how many events it
received, replayed from the broker and dropped for slow SSE clients.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from zjobs.broker.wire.jobs import TERMINAL, TERMINAL_IN_ORDER

if TYPE_CHECKING:
    from zjobs.api.hub import EventHub

QUEUE_SETTINGS = ("paused", "rate_limit")  # in a queue's row of STATS beside its counts
TRACKED_JOBS = 100_000
WAIT_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
                  900, 3600)
RUN_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
ENDED = {f"job.{state}": state for state in TERMINAL}  # event type -> the state it ends in


def _bounded_put(table: OrderedDict[str, float], key: str, value: float) -> None:
    table[key] = value
    table.move_to_end(key)
    if len(table) > TRACKED_JOBS:
        table.popitem(last=False)


class _ScrapeCollector(Collector):
    """Yields the broker's STATS (set just before each scrape) and the hub's counters."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub
        self.stats: dict[str, Any] | None = None

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("zjobs_broker_up", "1 if the broker answered STATS")
        up.add_metric([], 0 if self.stats is None else 1)
        yield up
        if self.stats is not None:
            yield from _broker_families(self.stats)
        yield from self._hub_families()

    def _hub_families(self) -> Iterator[Metric]:
        stats = self.hub.stats
        for name, value, help_text in (
            ("events_received", stats.received, "events the API read from the bus"),
            ("events_replayed", stats.replayed, "events the API fetched from the broker replay"),
            ("events_dropped", stats.dropped, "events not queued for a slow SSE client "
                                              "(it resyncs from the broker replay)"),
            ("event_gaps", stats.gaps, "gaps the hub could not fill from the broker"),
        ):
            family = CounterMetricFamily(f"zjobs_api_{name}", help_text)
            family.add_metric([], value)
            yield family
        clients = GaugeMetricFamily("zjobs_api_sse_clients", "open SSE streams")
        clients.add_metric([], self.hub.subscribers)
        yield clients


def _broker_families(stats: dict[str, Any]) -> Iterator[Metric]:
    jobs = GaugeMetricFamily("zjobs_jobs", "jobs by state", labels=["state"])
    for state, n in stats.get("jobs", {}).items():
        jobs.add_metric([state], n)
    yield jobs
    queues = GaugeMetricFamily("zjobs_queue_jobs", "jobs by queue and state",
                               labels=["queue", "state"])
    paused = GaugeMetricFamily("zjobs_queue_paused", "1 if the queue is paused",
                               labels=["queue"])
    for queue, row in stats.get("queues", {}).items():
        for state, n in row.items():
            if state not in QUEUE_SETTINGS:
                queues.add_metric([queue, state], n)
        paused.add_metric([queue], 1 if row.get("paused") else 0)
    yield queues
    yield paused
    workers = GaugeMetricFamily("zjobs_workers", "live workers")
    workers.add_metric([], stats.get("workers", 0))
    yield workers
    throughput = GaugeMetricFamily("zjobs_throughput_per_second",
                                   "jobs finished per second over the last minute")
    throughput.add_metric([], stats.get("throughput_per_s", 0.0))
    yield throughput
    yield from _broker_counters(stats.get("counters", {}))


def _broker_counters(counters: dict[str, int]) -> Iterator[Metric]:
    submitted = CounterMetricFamily("zjobs_jobs_submitted", "jobs submitted since broker start")
    submitted.add_metric([], counters.get("submitted", 0))
    yield submitted
    finished = CounterMetricFamily("zjobs_jobs_finished", "jobs finished since broker start",
                                   labels=["status"])
    for status in TERMINAL_IN_ORDER:
        finished.add_metric([status], counters.get(status, 0))
    yield finished
    retried = CounterMetricFamily("zjobs_jobs_retried", "failed attempts sent back to the queue")
    retried.add_metric([], counters.get("retried", 0))
    yield retried


class ApiMetrics:
    """The app's registry: scrape-time broker figures plus event-driven histograms."""

    def __init__(self, hub: EventHub) -> None:
        self.registry = CollectorRegistry()
        self._scrape = _ScrapeCollector(hub)
        self.registry.register(self._scrape)
        self.queue_wait = Histogram("zjobs_job_queue_wait_seconds",
                                    "time from enqueue to start of an attempt", ["queue"],
                                    buckets=WAIT_BUCKETS_S, registry=self.registry)
        self.run_time = Histogram("zjobs_job_run_seconds",
                                  "time from start of the last attempt to the end of the job",
                                  ["queue", "status"], buckets=RUN_BUCKETS_S,
                                  registry=self.registry)
        self._enqueued: OrderedDict[str, float] = OrderedDict()
        self._started: OrderedDict[str, float] = OrderedDict()

    def render(self, stats: dict[str, Any] | None) -> bytes:
        """The exposition text, with `stats` (None: broker down) for the scrape-time gauges."""
        self._scrape.stats = stats
        try:
            return generate_latest(self.registry)
        finally:
            self._scrape.stats = None

    def observe(self, event: dict[str, Any]) -> None:
        job_id = event.get("job_id")
        if job_id is None:
            return
        kind, ts = event["type"], float(event.get("ts") or 0.0)
        queue = str(event.get("queue") or "default")
        if kind in ("job.submitted", "job.scheduled", "job.queued", "job.retrying"):
            due = event.get("run_at") or event.get("next_attempt_at") or ts
            _bounded_put(self._enqueued, job_id, max(ts, float(due)))
            self._started.pop(job_id, None)
        elif kind == "job.started":
            enqueued = self._enqueued.pop(job_id, None)
            if enqueued is not None:
                self.queue_wait.labels(queue).observe(max(ts - enqueued, 0.0))
            _bounded_put(self._started, job_id, ts)
        elif kind in ENDED:
            self._enqueued.pop(job_id, None)
            started = self._started.pop(job_id, None)
            if started is not None:
                self.run_time.labels(queue, ENDED[kind]).observe(max(ts - started, 0.0))
