"""`zjobs`: one console script for every process and the shell tools.

Every setting is a flag or the matching ZJOBS_* environment variable (the
flag wins); the README's configuration table lists them.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from zjobs.broker.client.jsonview import job_json
from zjobs.broker.wire import limits as lim
from zjobs.broker.wire.logs import configure_logging
from zjobs.broker.wire.schema import BY_NAME, STATES, SUBMIT_OPTIONS, JobState
from zjobs.broker.wire.settings import (
    API,
    BROKER,
    CLIENT,
    SERVERS,
    UP,
    WORKER,
    config_values,
    options,
)
from zjobs.cli_errors import debug_wanted, report

client_options = options(CLIENT)  # every setting is defined once, in broker/settings.py


def _curve(curve_dir: str | None, role: str) -> Any:
    """The CURVE settings of this process's role; a missing key ends it with one error line."""
    from zjobs.broker.wire.curve import CurveError, client_curve, server_curve

    try:
        return server_curve(curve_dir) if role == "broker" else client_curve(curve_dir, role)
    except CurveError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


READ_PATIENCE_S = 2.0  # with Python's start, a read against a silent broker ends within 3 s


def _client(frontend: str, curve_dir: str | None, broker_timeout: float, *,
            read: bool = False) -> Any:
    """A client for a shell tool. A read (status, list, tail) gives up on a silent broker
    after READ_PATIENCE_S unless --broker-timeout or ZJOBS_BROKER_TIMEOUT was given: a
    person asking how things are should not wait 10 s to learn the broker is down."""
    from zjobs.broker.client.client import Client

    if read and _defaulted("broker_timeout"):
        broker_timeout = min(broker_timeout, READ_PATIENCE_S)
    return Client(frontend, curve=_curve(curve_dir, "client"), timeout=broker_timeout)


def _defaulted(param: str) -> bool:
    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.get_parameter_source(param) in (
        click.core.ParameterSource.DEFAULT, None)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog="Add --debug (or set ZJOBS_DEBUG=1) to see the traceback of a failure.")
@click.version_option(package_name="zjobs")
def main() -> None:
    """zjobs: a fast, durable job broker on a ZeroMQ bus."""


def invoke(argv: list[str] | None = None) -> int:
    """The console script: run a command; a failure is one `error:` line (see cli_errors)."""
    debug, args = debug_wanted(list(sys.argv[1:] if argv is None else argv))
    try:
        main.main(args, prog_name="zjobs", standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException as exc:  # noqa: BLE001 - the one place every failure is reported
        return report(exc, debug)
    return 0


# ---------------------------------------------------------------- processes


@main.command()
@options(BROKER)
def broker(**opts: Any) -> None:
    """Run the broker: frontend ROUTER, backend ROUTER, events PUB, durable store.

    On a PostgreSQL --store, start several on different hosts: one is primary, the others
    stand by and take over when it dies.
    """
    from zjobs.broker.server import BrokerConfig, quiet_gc
    from zjobs.broker.standby import Broker

    configure_logging(opts["log_json"], opts["log_level"])
    config = BrokerConfig(**config_values(BROKER, opts, BrokerConfig),
                          curve=_curve(opts["curve_dir"], BROKER))
    _check_mdp(config)
    process = Broker(config)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: process.stop())
    quiet_gc()
    process.run()


def _check_mdp(config: Any) -> None:
    """`--mdp` (served by the broker loop: broker/majordomo.py) is refused under CURVE."""
    if config.mdp and config.curve is not None:
        raise click.UsageError("--mdp does not work with --curve-dir yet: Majordomo peers "
                               "have no zjobs keys; run the MDP socket on a broker without CURVE")


@main.command()
@options(WORKER)
def worker(**opts: Any) -> None:
    """Run a worker: takes jobs from the broker's backend."""
    from zjobs.worker.registry import import_tasks
    from zjobs.worker.runtime import WorkerConfig, run_worker

    configure_logging(opts["log_json"], opts["log_level"])
    config = WorkerConfig(**config_values(WORKER, opts, WorkerConfig),
                          curve=_curve(opts["curve_dir"], WORKER))  # never a client's key
    import_tasks(config.tasks)
    run_worker(config)


@main.command()
@options(API)
def api(**opts: Any) -> None:
    """Run the HTTP API, SSE streams and dashboard (Starlette under uvicorn)."""
    from zjobs.api.main import run_api
    from zjobs.exposure import check_exposure

    check_exposure(opts)
    configure_logging(opts["log_json"], opts["log_level"])
    run_api(opts)


@main.command()
@options(*SERVERS)
@options(UP)
def up(**opts: Any) -> None:
    """Broker + API + N workers on the embedded store, supervised; Ctrl-C stops them all."""
    from zjobs.up import run_up

    configure_logging(opts["log_json"], opts["log_level"])
    sys.exit(run_up(opts["workers"], opts))


# ---------------------------------------------------------------- shell tools


def _parse_arg(text: str) -> Any:
    """`2` -> 2, `[1,2]` -> [1, 2], `"x"` -> "x"; other words stay strings.

    Text that starts like JSON (`[`, `{`, `"`) must be valid JSON: `'[1,2'` is a typo to
    report, not a string to send.
    """
    try:
        return json.loads(text)
    except ValueError as exc:
        if text.lstrip()[:1] in ('[', '{', '"'):
            raise click.BadParameter(f"{text!r} is not valid JSON ({exc})") from None
        return text


_CLICK_TYPES = {int: int, float: float}


def job_options(fn: Callable) -> Callable:
    """The job options of `zjobs submit`: the job schema's submit options, with their help."""
    for field in reversed(SUBMIT_OPTIONS):
        kind = str if field.time else _CLICK_TYPES.get(field.base, str)
        fn = click.option("--" + field.name.replace("_", "-"), field.name, type=kind,
                          default=field.default, show_default=field.default is not None,
                          multiple=field.base is list, help=field.help)(fn)
    return fn


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=None, default=str)


@main.command()
@client_options
@click.argument("task")
@click.argument("args", nargs=-1)
@click.option("--kw", multiple=True, help="a keyword argument KEY=VALUE (repeatable)")
@job_options
@click.option("--wait", is_flag=True, help="show progress and print the result")
def submit(task: str, args: tuple[str, ...], kw: tuple[str, ...], wait: bool, frontend: str,
           curve_dir: str | None, broker_timeout: float, **job_options: Any) -> None:
    """Submit TASK with ARGS (JSON values, or plain strings)."""
    from zjobs.watch import wait_and_show

    kwargs = {}
    for pair in kw:
        key, _, value = pair.partition("=")
        kwargs[key] = _parse_arg(value)
    for field in SUBMIT_OPTIONS:
        if field.time and job_options[field.name] is not None:  # epoch seconds or ISO-8601
            job_options[field.name] = _parse_arg(job_options[field.name])
    with _client(frontend, curve_dir, broker_timeout) as client:
        job_id = client.submit(task, *[_parse_arg(a) for a in args], **job_options, **kwargs)
        if not wait:
            click.echo(job_id)
            return
        job = wait_and_show(client, job_id)
    if job["status"] == JobState.SUCCEEDED:
        click.echo(_show(job["result"]))
        return
    error = job.get("error") or {}
    click.echo(f"{job['status']}: {error.get('type')}: {error.get('message')}", err=True)
    sys.exit(1)


@main.command()
@client_options
@click.argument("job_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="raw JSON")
def status(job_id: str | None, frontend: str, curve_dir: str | None, broker_timeout: float,
           as_json: bool) -> None:
    """Queue depths and workers, or one job (with ID)."""
    from zjobs.watch import show_job, show_stats

    with _client(frontend, curve_dir, broker_timeout, read=True) as client:
        if job_id:
            show_job(client.get(job_id), as_json)
        else:
            show_stats(client.stats(), client.workers(), as_json)


@main.command()
@client_options
@click.argument("job_id", required=False)
@click.option("--types", default="job.,log,worker.", show_default=True,
              help="comma-separated event type prefixes to follow")
def tail(job_id: str | None, frontend: str, curve_dir: str | None, broker_timeout: float,
         types: str) -> None:
    """Follow all events live, or one job's log (with ID) until it ends."""
    from zjobs.watch import follow_events, follow_log

    with _client(frontend, curve_dir, broker_timeout, read=True) as client:
        try:
            if job_id:
                sys.exit(follow_log(client, job_id))
            follow_events(client, tuple(t for t in types.split(",") if t))
        except KeyboardInterrupt:
            pass


def _job_action(action: str, doc: str) -> None:
    """`zjobs cancel ID...` / `zjobs retry ID...`: the client method `action` on each id."""

    @main.command(action, help=doc)
    @client_options
    @click.argument("job_ids", metavar="ID...", nargs=-1, required=True)
    @click.option("--json", "as_json", is_flag=True, help="print the jobs as JSON")
    def command(job_ids: tuple[str, ...], frontend: str, curve_dir: str | None,
                broker_timeout: float, as_json: bool) -> None:
        _each_job(job_ids, action, frontend, curve_dir, broker_timeout, as_json)


_job_action("cancel", "Cancel queued or running jobs.")
_job_action("retry", "Run failed or cancelled jobs again.")


def _each_job(job_ids: tuple[str, ...], action: str, frontend: str, curve_dir: str | None,
              broker_timeout: float, as_json: bool) -> None:
    """Apply `action` to every id; report each refusal on its own line, exit 1 if any."""
    from zjobs.broker.wire.errors import BrokerError

    done, refused = [], 0
    with _client(frontend, curve_dir, broker_timeout) as client:
        for job_id in job_ids:
            try:
                job = getattr(client, action)(job_id)
            except BrokerError as exc:
                refused += 1
                click.echo(f"error: {job_id}: {exc.message}", err=True)
                continue
            done.append(job)
            if not as_json:
                click.echo(f"{job['id']} {job['status']}")
    if as_json:
        from zjobs.watch import print_json

        print_json([job_json(job) for job in done])
    if refused:
        sys.exit(1)


@main.group()
def queue() -> None:
    """Pause, resume, purge or rate-limit a queue (settings survive broker restarts)."""


def _configure(name: str, frontend: str, curve_dir: str | None, broker_timeout: float,
               **change: Any) -> None:
    from zjobs.watch import queue_line

    with _client(frontend, curve_dir, broker_timeout) as client:
        click.echo(queue_line(client.configure_queue(name, **change)))


@queue.command("pause")
@client_options
@click.argument("name")
def queue_pause(name: str, frontend: str, curve_dir: str | None, broker_timeout: float) -> None:
    """Start no job of queue NAME until it is resumed (it still accepts jobs)."""
    _configure(name, frontend, curve_dir, broker_timeout, paused=True)


@queue.command("resume")
@client_options
@click.argument("name")
def queue_resume(name: str, frontend: str, curve_dir: str | None, broker_timeout: float) -> None:
    """Start the jobs of queue NAME again."""
    _configure(name, frontend, curve_dir, broker_timeout, paused=False)


@queue.command("limit")
@client_options
@click.argument("name")
@click.argument("rate", type=float)
def queue_limit(name: str, rate: float, frontend: str, curve_dir: str | None,
                broker_timeout: float) -> None:
    """Start at most RATE jobs of queue NAME per second over all workers; 0 removes it."""
    _configure(name, frontend, curve_dir, broker_timeout, rate_limit=rate)


@queue.command("purge")
@client_options
@click.argument("name")
def queue_purge(name: str, frontend: str, curve_dir: str | None, broker_timeout: float) -> None:
    """Cancel every queued, scheduled or deferred job of queue NAME (running ones go on)."""
    with _client(frontend, curve_dir, broker_timeout) as client:
        cancelled = client.purge(name)
    click.echo(f"queue {name}: {cancelled} job{'' if cancelled == 1 else 's'} cancelled")


@main.command("list")
@client_options
@click.option("--status", type=click.Choice(STATES), multiple=True,
              help="only jobs in this state (repeatable: any of them)")
@click.option("--queue", help="only jobs of this queue")
@click.option("--task", help="only jobs of this task")
@click.option("--worker", help="only jobs run by this worker")
@click.option("--limit", type=click.IntRange(min=1, max=lim.LIST_MAX), default=lim.LIST_DEFAULT,
              show_default=True, help="most jobs to show, newest first")
@click.option("--json", "as_json", is_flag=True, help="print the jobs as JSON")
def list_jobs(frontend: str, curve_dir: str | None, broker_timeout: float, as_json: bool,
              **filters: Any) -> None:
    """List jobs, newest first."""
    from zjobs.watch import show_jobs

    filters["status"] = list(filters["status"]) or None
    with _client(frontend, curve_dir, broker_timeout, read=True) as client:
        show_jobs(client.list_page(**filters), as_json)


@main.command(context_settings={"ignore_unknown_options": True})
@client_options
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.argument("entry")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--input", "inputs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="an input file for the program (repeatable)")
@click.option("--env", "env_pairs", multiple=True, help="KEY=VALUE for the program (repeatable)")
@click.option("--timeout-s", type=float, default=None, help="seconds the program may run")
@click.option("--runtime", default=None, help="interpreter or command [default: python3]")
@click.option("--net-policy", type=click.Choice(["inherit", "none"]), default="inherit",
              show_default=True, help="none: run without network (a new network namespace)")
@click.option("--queue", default=BY_NAME["queue"].default, show_default=True,
              help="the queue to put the job in")
@click.option("--artifacts", "artifacts_dir", type=click.Path(file_okay=False), default=None,
              help="download the program's artifacts (files under out/) here")
@click.option("--detach", is_flag=True, help="print the job id and return")
def run(directory: str, entry: str, args: tuple[str, ...], inputs: tuple[str, ...],
        env_pairs: tuple[str, ...], artifacts_dir: str | None, detach: bool, frontend: str,
        curve_dir: str | None, broker_timeout: float, **job_options: Any) -> None:
    """Run ENTRY of the program in DIRECTORY on a worker (--allow-exec); follow its output.

    Everything after `--` goes to the program: `zjobs run ./app main.py -- --size 3`.
    """
    from zjobs.broker.client.programs import read_tree, save_artifacts
    from zjobs.watch import follow_log

    files = read_tree(directory)
    input_files = {os.path.basename(path): open(path, "rb").read() for path in inputs}
    env = dict(pair.partition("=")[::2] for pair in env_pairs)
    with _client(frontend, curve_dir, broker_timeout) as client:
        job_id = client.submit_exec(entry, files, input_files=input_files, args=list(args),
                                    env=env, **job_options)
        if detach:
            click.echo(job_id)
            return
        code = follow_log(client, job_id)
        if artifacts_dir:
            for path in save_artifacts(client, job_id, artifacts_dir):
                click.echo(f"artifact: {path}", err=True)
    sys.exit(code)


@main.group()
def schedule() -> None:
    """Periodic jobs: add (or replace), list and remove schedules."""


@schedule.command("add")
@client_options
@click.argument("name")
@click.argument("task")
@click.argument("args", nargs=-1)
@click.option("--kw", multiple=True, help="a keyword argument KEY=VALUE (repeatable)")
@click.option("--cron", default=None, help="a 5-field cron expression, in UTC")
@click.option("--every", "every_s", type=float, default=None, help="fire every SECONDS")
@click.option("--queue", default=BY_NAME["queue"].default, show_default=True,
              help="the jobs' queue")
@click.option("--priority", type=int, default=BY_NAME["priority"].default, show_default=True,
              help="the jobs' priority")
@click.option("--timeout-s", "timeout_s", type=float, default=None, help="each job's timeout")
@click.option("--max-retries", "max_retries", type=int, default=BY_NAME["max_retries"].default,
              show_default=True,
              help="each job's retries")
@click.option("--json", "as_json", is_flag=True, help="print the schedule as JSON")
def schedule_add(name: str, task: str, args: tuple[str, ...], kw: tuple[str, ...],
                 frontend: str, curve_dir: str | None, broker_timeout: float, as_json: bool,
                 **options: Any) -> None:
    """Submit TASK with ARGS on a cron expression (--cron) or every SECONDS (--every)."""
    from zjobs.watch import show_schedule

    if (options["cron"] is None) == (options["every_s"] is None):
        raise click.UsageError("give exactly one of --cron and --every")
    kwargs = {key: _parse_arg(value) for key, _, value in (p.partition("=") for p in kw)}
    with _client(frontend, curve_dir, broker_timeout) as client:
        shown = client.schedule(name, task, *[_parse_arg(a) for a in args], **options, **kwargs)
    show_schedule(shown, as_json)


@schedule.command("list")
@client_options
@click.option("--json", "as_json", is_flag=True, help="print the schedules as JSON")
def schedule_list(frontend: str, curve_dir: str | None, broker_timeout: float,
                  as_json: bool) -> None:
    """Every schedule, with its next and last run."""
    from zjobs.watch import show_schedules

    with _client(frontend, curve_dir, broker_timeout, read=True) as client:
        show_schedules(client.schedules(), as_json)


@schedule.command("remove")
@client_options
@click.argument("name")
def schedule_remove(name: str, frontend: str, curve_dir: str | None,
                    broker_timeout: float) -> None:
    """Remove the schedule NAME; the jobs it submitted stay."""
    with _client(frontend, curve_dir, broker_timeout) as client:
        client.unschedule(name)
    click.echo(f"removed {name}")


@main.group()
def keys() -> None:
    """CURVE key pairs for the bus."""


@keys.command("generate")
@click.argument("directory")
def keys_generate(directory: str) -> None:
    """Write a key pair per role (broker, client, worker, api) into DIRECTORY.

    allowed/frontend/ holds the public keys the frontend and events sockets admit (client,
    api), allowed/backend/ those the backend admits (worker).
    """
    from zjobs.broker.wire.curve import generate

    for path in generate(directory):
        click.echo(path)
    click.echo(f"start processes with --curve-dir {directory} (or ZJOBS_CURVE_DIR)")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def bench(ctx: click.Context) -> None:
    """The benchmarks of bench/ in a source checkout (see `zjobs bench --help`)."""
    from pathlib import Path

    from zjobs.broker.wire.errors import StartError

    checkout = Path(__file__).resolve().parent.parent
    if not (checkout / "bench" / "__main__.py").exists():
        raise StartError("zjobs bench runs from a source checkout of zjobs (bench/ is not "
                         "installed with the package): run scripts/bench there")
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    from bench.__main__ import main as bench_main

    sys.exit(bench_main(ctx.args))


def script() -> None:
    """The `zjobs` console script."""
    sys.exit(invoke())


if __name__ == "__main__":  # pragma: no cover - `python -m zjobs`
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    script()
