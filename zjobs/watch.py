"""What the shell tools show: a job's progress, stats tables, live events, a job's log."""

from __future__ import annotations

import json
import math
import sys
import time
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from zjobs.broker.client.client import Client
from zjobs.broker.client.jsonview import dumps, job_json, schedule_json, worker_json
from zjobs.broker.wire.jobs import TERMINAL, TERMINAL_EVENTS
from zjobs.broker.wire.schema import STATES, JobState

_err = Console(stderr=True)
_out = Console()
UNSERVED = "unserved"  # not a state: queued jobs no live worker can run (GET /jobs' field)
_COLOURS = {JobState.SUCCEEDED: "green", JobState.FAILED: "red", JobState.CANCELLED: "grey50",
            JobState.RUNNING: "yellow", JobState.QUEUED: "cyan", JobState.SCHEDULED: "magenta",
            UNSERVED: "bold red"}


UNSERVED_NOTICE_S = 3.0  # a job still unserved after this long gets one line on stderr


def wait_and_show(client: Client, job_id: str) -> dict[str, Any]:
    """Wait for the job, drawing its progress on stderr; the terminal job.

    A job that no live worker can run (`unserved`) for a few seconds gets one line on
    stderr saying so and how to start a worker that can; the wait goes on.
    """
    columns = (TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.fields[msg]}"),
               TimeElapsedColumn())
    notice_at = time.monotonic() + UNSERVED_NOTICE_S
    with Progress(*columns, console=_err, transient=True, disable=not _err.is_terminal) as bar:
        handle = bar.add_task(job_id[:13], total=1.0, msg="")
        while True:
            job = client.poll(job_id, timeout=0.25)
            progress = job.get("progress") or {}
            bar.update(handle, completed=progress.get("fraction") or 0,
                       msg=f"{job['status']} {progress.get('message') or ''}")
            if job["status"] in TERMINAL:
                return job
            if job.get("unserved") and time.monotonic() >= notice_at:
                notice_at = math.inf
                _err.print(unserved_hint(job), soft_wrap=True, markup=False, highlight=False)


def unserved_hint(job: dict[str, Any]) -> str:
    """One line: no live worker can run `job`, and the command that starts one that can."""
    queue = job.get("queue") or "default"
    queues = "" if queue == "default" else f" --queues {queue}"
    if job.get("kind") == "exec":
        what, start = "runs exec jobs", f"zjobs worker --allow-exec{queues}"
    elif job.get("kind") == "function":
        what, start = "runs function jobs", f"zjobs worker --allow-pickle{queues}"
    else:
        what = f"has task {job.get('task')!r}"
        start = f"zjobs worker --tasks MODULE{queues} (MODULE: where {job.get('task')} is " \
                "defined with @task)"
    return (f"waiting: no live worker on queue {queue!r} {what}; the job stays queued until "
            f"one joins: {start}")


def print_json(value: Any) -> None:
    """What REST would answer, indented: the same fields in the same formats."""
    print(dumps(value, indent=2), flush=True)


def show_job(job: dict[str, Any], as_json: bool) -> None:
    """One job; `--json` prints GET /jobs/{id}'s body."""
    if as_json:
        print_json(job_json(job))
        return
    table = Table(show_header=False, box=None)
    for key, value in job.items():
        if key.endswith("_at") and isinstance(value, int | float):
            value = datetime.fromtimestamp(value).isoformat(sep=" ", timespec="milliseconds")
        if key == "status":
            value = f"[{_COLOURS.get(value, 'white')}]{value}[/]"
        elif isinstance(value, dict | list):
            value = json.dumps(value, default=str)
        table.add_row(f"[bold]{key}", str(value) if value is not None else "-")
    _out.print(table)


def show_jobs(page: dict[str, Any], as_json: bool) -> None:
    """A page of jobs; `--json` prints GET /jobs's body (`{"jobs": [...], "next_cursor"}`)."""
    jobs = page["jobs"]
    if as_json:
        print_json({"jobs": [job_json(job) for job in jobs],
                    "next_cursor": page.get("next_cursor")})
        return
    table = Table(box=None)
    for column in ("id", "status", "queue", "task", "attempts", "worker", "created"):
        table.add_column(column)
    for job in jobs:
        created = datetime.fromtimestamp(job["created_at"]).isoformat(sep=" ", timespec="seconds")
        status = f"[{_COLOURS.get(job['status'], 'white')}]{job['status']}[/]"
        table.add_row(job["id"], status, job["queue"], job.get("task") or job["kind"],
                      str(job["attempts"]), job.get("worker") or "-", created)
    _out.print(table)


def show_schedule(schedule: dict[str, Any], as_json: bool) -> None:
    """One schedule; `--json` prints PUT /schedules/{name}'s body."""
    if as_json:
        print_json(schedule_json(schedule))
        return
    show_schedules([schedule], False)


def show_schedules(schedules: list[dict[str, Any]], as_json: bool) -> None:
    """Every schedule; `--json` prints GET /schedules's body (`{"schedules": [...]}`)."""
    if as_json:
        print_json({"schedules": [schedule_json(found) for found in schedules]})
        return
    table = Table(box=None)
    for column in ("name", "task", "when", "queue", "next run (UTC)", "last run (UTC)"):
        table.add_column(column)
    for found in schedules:
        when = found["cron"] if found["cron"] is not None else f"every {found['every_s']:g} s"
        table.add_row(found["name"], found["task"], when, found["queue"],
                      _utc(found["next_run_at"]), _utc(found["last_run_at"]))
    _out.print(table)


def _utc(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).isoformat(sep=" ", timespec="seconds")


def show_stats(stats: dict[str, Any], workers: list[dict[str, Any]], as_json: bool) -> None:
    """Queue depths and workers, in the terminal's width; `--json` prints GET /stats's body
    (the broker's part) and GET /workers's list as `{"stats": ..., "workers": [...]}`."""
    if as_json:
        print_json({"stats": stats, "workers": [worker_json(w) for w in workers]})
        return
    _out.print(queue_table(stats["queues"]))
    table = _compact(f"workers ({len(workers)})")
    for column in ("name", "host", "queues", "running", "processed", "failed"):
        table.add_column(column, overflow="fold")
    for w in workers:
        table.add_row(w["name"], w["host"], ",".join(w["queues"]),
                      f"{len(w['running'])}/{w['capacity']}", str(w["processed"]),
                      str(w["failed"]))
    _out.print(table)
    _out.print(f"throughput {stats['throughput_per_s']}/s over the last minute, "
               f"event seq {stats['seq']}")


def queue_table(depths: dict[str, dict[str, Any]]) -> Table:
    """Jobs per queue and state. Only the states some queue has jobs in (queued and running
    always), plus `unserved` when a queue has some: the table fits an 80-column terminal, and
    nothing is cut, only folded, in a narrower one."""
    rows = sorted(depths.items())
    always = (JobState.QUEUED, JobState.RUNNING)
    states = [s for s in STATES if s in always or any(r.get(s) for _, r in rows)]
    if any(r.get(UNSERVED) for _, r in rows):
        states.insert(states.index(JobState.QUEUED) + 1, UNSERVED)
    table = _compact("queues")
    table.add_column("queue", overflow="fold")
    for state in states:
        table.add_column(state, justify="right", style=_COLOURS.get(state), overflow="fold")
    for name, row in rows:
        paused = " (paused)" if row.get("paused") else ""
        table.add_row(name + paused, *(str(row.get(s, 0)) for s in states))
    return table


def _compact(title: str) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")


def queue_line(settings: dict[str, Any]) -> str:
    """One line for a queue's settings: `queue q paused, at most 5 jobs/s`."""
    state = "paused" if settings["paused"] else "running"
    rate = settings["rate_limit"]
    limit = f"at most {rate:g} jobs/s" if rate is not None else "no rate limit"
    return f"queue {settings['name']} {state}, {limit}"


def format_event(event: dict[str, Any]) -> str:
    ts = datetime.fromtimestamp(event["ts"]).strftime("%H:%M:%S.%f")[:-3]
    kind = event["type"]
    if kind == "log":
        return f"{ts} {event['job_id'][:13]} {event['stream']}| {event['data']}"
    parts = [f"{ts} {kind:<15}"]
    for key in ("job_id", "task", "queue", "worker", "status", "attempts"):
        if event.get(key) is not None:
            parts.append(f"{key}={event[key]}")
    if kind == "job.progress":
        parts.append(f"{event.get('fraction', 0):.0%} {event.get('message') or ''}")
    if event.get("error"):
        parts.append(f"error={event['error'].get('type')}: {event['error'].get('message')}")
    return " ".join(parts)


def follow_events(client: Client, types: tuple[str, ...]) -> None:
    for event in client.events(types=types):
        print(format_event(event), flush=True)


def follow_log(client: Client, job_id: str) -> int:
    """Print the job's log from its first line, then live, until it ends. Exit code."""
    since = client.ping()["seq"]
    printed = 0
    for line in client.logs(job_id):
        _print_line(line)
        printed = line["line"]
    if client.get(job_id)["status"] in TERMINAL:
        return _final(client, job_id)
    for event in client.events(types=("log", "job."), since=since):
        if event.get("job_id") != job_id:
            continue
        if event["type"] == "log" and event["line"] > printed:
            _print_line(event)
            printed = event["line"]
        elif event["type"] in TERMINAL_EVENTS:
            return _final(client, job_id)
    return 0


def _print_line(line: dict[str, Any]) -> None:
    stream = sys.stderr if line["stream"] == "stderr" else sys.stdout
    print(line["data"], file=stream, flush=True)


def _final(client: Client, job_id: str) -> int:
    job = client.get(job_id)
    _err.print(f"[{_COLOURS.get(job['status'], 'white')}]job {job['status']}[/]")
    return 0 if job["status"] == JobState.SUCCEEDED else 1
