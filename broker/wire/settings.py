"""Every setting of every zjobs process, defined once.

A `Setting` names its flag (`--heartbeat-interval`), its environment variable
(`ZJOBS_HEARTBEAT_INTERVAL`), its type, default and help, the roles that take
it, and the field of the role's config it fills. From this one table come:
the click options of each command (`options`), the config objects
(`config_values`), what `zjobs up` forwards to each child (`forwarded`), and
the defaults of the config objects (`default`: `BrokerConfig`, `WorkerConfig`,
the API's `Settings`, the client's endpoint), and the README's configuration
table is checked against it by a test. Adding a setting is one entry here (and
the code that uses the field).

The flag wins over the environment; the environment over the default.
Settings with `flag=False` are environment-only (a secret has no business in
`ps` output).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from zjobs.broker.wire.limits import PREFETCH_MAX

MIB = 1024 * 1024

BROKER, WORKER, API, CLIENT, UP = "broker", "worker", "api", "client", "up"
SERVERS = (BROKER, WORKER, API)
ANY = (BROKER, WORKER, API, CLIENT)


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    help: str
    roles: tuple[str, ...]
    type: Any = None
    env: str | None = None       # default: ZJOBS_<NAME>
    field: str | None = None     # the config field it fills; default: the name
    is_flag: bool = False
    flag: bool = True            # False: from the environment only
    split: bool = False          # a comma-separated list

    @property
    def envvar(self) -> str:
        return self.env or f"ZJOBS_{self.name.upper()}"

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def target(self) -> str:
        return self.field or self.name

    def click_option(self) -> Callable:
        return click.option(self.option, self.name, envvar=self.envvar, show_envvar=True,
                            show_default=self.default is not None, default=self.default,
                            type=self.type, is_flag=self.is_flag, help=self.help)


SECONDS = click.FloatRange(min=0, min_open=True)

SETTINGS: tuple[Setting, ...] = (
    # the bus
    Setting("frontend", "tcp://127.0.0.1:5555", "the broker's client socket (ROUTER)",
            (*SERVERS, CLIENT)),
    Setting("backend", "tcp://127.0.0.1:5556", "the broker's worker socket (ROUTER)", SERVERS),
    Setting("events", "tcp://127.0.0.1:5557", "the broker's event socket (PUB)", SERVERS),
    Setting("heartbeat_interval", 1.0, "seconds between heartbeats", SERVERS,
            click.FloatRange(min=0.01, max=3600), field="heartbeat_interval_s"),
    Setting("heartbeat_liveness", 3, "missed heartbeats before a peer is declared dead",
            SERVERS, click.IntRange(min=1, max=1000)),
    Setting("max_message", 16 * MIB, "largest message in bytes; larger ones are refused",
            SERVERS, click.IntRange(min=1024)),
    Setting("curve_dir", None, "directory from `zjobs keys generate`: turns CURVE on", ANY),
    Setting("log_json", False, "log JSON lines instead of readable ones", SERVERS,
            is_flag=True),
    Setting("log_level", "info", "the least severe log lines shown", SERVERS,
            click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)),
    # the broker
    Setting("data_dir", "./.zjobs", "directory of the embedded SQLite store", (BROKER,)),
    Setting("store", None, "sqlite:///path/dir, or postgresql://user:password@host:port/db "
            "for a primary and standbys on one database [default: SQLite in --data-dir]",
            (BROKER,)),
    Setting("store_wait", False, "PostgreSQL unreachable at start: wait for it with backoff "
            "instead of exiting", (BROKER,), is_flag=True),
    Setting("lease_ttl", 2.0, "PostgreSQL store: seconds the primary's lease lasts (renewed "
            "every 1/8 of it); a standby ends a primary whose lease stood still that long and "
            "takes over, and a primary that could not commit for that long gives up the lead",
            (BROKER,), click.FloatRange(min=0.5, max=600), field="lease_ttl_s"),
    Setting("retention", 7 * 24 * 3600.0, "seconds a finished job, its logs and artifacts "
            "are kept", (BROKER,), SECONDS, field="retention_s"),
    Setting("purge_interval", 30.0, "seconds between retention sweeps", (BROKER,), SECONDS,
            field="purge_interval_s"),
    Setting("event_window", 100_000, "recent events kept for replay", (BROKER,),
            click.IntRange(min=100_000)),
    Setting("queue_window", 10_000, "ready jobs of each queue (and task) kept in memory, the "
            "next by priority then FIFO; the rest of a deep queue waits in the store and is "
            "read in as the window drains", (BROKER,), click.IntRange(min=10, max=10_000_000)),
    Setting("sync", "NORMAL", "SQLite synchronous mode: NORMAL survives a process crash, FULL "
            "a power cut", (BROKER,), click.Choice(["NORMAL", "FULL"])),
    Setting("busy_poll", 0.0003, "seconds the broker keeps polling without sleeping after a "
            "turn, so that the next message of a round trip finds it awake and its caches "
            "warm; 0 sleeps at once (also the case on a single CPU)", (BROKER,),
            click.FloatRange(min=0, max=0.01), field="busy_poll_s"),
    Setting("default_timeout", None, "seconds an attempt may run when the job sets no "
            "timeout_s; the broker decides every attempt's limit and the worker enforces it "
            "[default: no limit]", (BROKER,), SECONDS, field="default_timeout_s"),
    Setting("mdp", None, "also speak Majordomo (MDP/0.2) on this endpoint: a request to "
            "service S is a job in queue S, a Majordomo worker for S serves queue S",
            (BROKER,)),
    # the worker
    Setting("queues", "default", "comma-separated queues to serve", (WORKER,), split=True),
    Setting("concurrency", None, "sync jobs at once: plain `def` tasks, `function` jobs, "
            "thread tasks and programs, each sync slot a process [default: CPU count]",
            (WORKER,), click.IntRange(min=1)),
    Setting("async_concurrency", 100, "`async def` tasks at once, apart from the sync slots",
            (WORKER,), click.IntRange(min=1, max=100_000)),
    Setting("prefetch", 256, "most jobs a worker (and each sync slot) holds beyond those it "
            "runs; the window adapts, and closes while a task runs long; 0: none", (WORKER,),
            click.IntRange(min=0, max=PREFETCH_MAX)),
    Setting("tasks", None, "comma-separated task modules, imported from the current "
            "directory too [default: the demo tasks]", (WORKER,), split=True),
    Setting("name", None, "worker name [default: host-pid]", (WORKER,),
            env="ZJOBS_WORKER_NAME"),
    Setting("allow_exec", False, "run `exec` jobs (programs sent with their files)",
            (WORKER,), is_flag=True),
    Setting("exec_user", None, "the user exec jobs run as; switching takes a root worker "
            "[default: nobody as root, else the worker's own user]", (WORKER,)),
    Setting("allow_pickle", False, "run `function` jobs (unpickling runs arbitrary code)",
            (WORKER,), is_flag=True),
    Setting("shutdown_grace", 5.0, "seconds running jobs get to finish on SIGTERM before "
            "being handed back", (WORKER,), click.FloatRange(min=0), field="shutdown_grace_s"),
    # the API
    Setting("host", "127.0.0.1", "HTTP address to listen on", (API,)),
    Setting("port", 8000, "HTTP port", (API,), click.IntRange(min=0, max=65535)),
    Setting("access_log", False, "log every HTTP request", (API,), is_flag=True),
    Setting("sse_ping", 15.0, "seconds between keep-alive comments on idle SSE streams",
            (API,), SECONDS, env="ZJOBS_API_SSE_PING", field="sse_ping_s"),
    Setting("api_broker_timeout", 5.0, "seconds before a silent broker makes a request 503 "
            "(not sent: nothing done) or 504 (sent: it may have been done)", (API,), SECONDS,
            field="broker_timeout_s"),
    Setting("api_body_timeout", 30.0, "seconds a request body may stall before the request "
            "is answered 408 and its connection closed", (API,), SECONDS,
            field="body_timeout_s"),
    Setting("api_workers", 1, "API processes sharing the HTTP port, each with its own event "
            "hub (more SSE clients; one core each)", (API,), click.IntRange(min=1, max=64)),
    Setting("api_token", None, "bearer token every route but /health requires", (API,),
            flag=False, field="token"),
    Setting("open", False, "serve the HTTP API on a non-loopback --host without "
            "ZJOBS_API_TOKEN, unprotected, on purpose (refused otherwise)", (API,),
            is_flag=True),
    # `zjobs up` itself
    Setting("workers", 2, "worker processes to start", (UP,), click.IntRange(min=0, max=256)),
    Setting("restart", "always", "restart a child that exits unasked (backoff 1 s doubling "
            "to 30 s); never: stop everything when one exits", (UP,),
            click.Choice(["always", "on-failure", "never"])),
    # the shell tools
    Setting("broker_timeout", 10.0, "seconds to wait for the broker to answer", (CLIENT,),
            click.FloatRange(min=0.1)),
)


BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def default(name: str) -> Any:
    """The table's default of setting `name`: the one value every config object, client and
    command starts from (a test fails when a copy drifts from it)."""
    return BY_NAME[name].default


def for_role(*roles: str) -> list[Setting]:
    """The settings any of `roles` takes, in table order."""
    return [s for s in SETTINGS if any(r in s.roles for r in roles)]


def options(*roles: str) -> Callable[[Callable], Callable]:
    """A decorator adding the click options of `roles` (environment-only ones excluded)."""

    def decorate(fn: Callable) -> Callable:
        for setting in reversed([s for s in for_role(*roles) if s.flag]):
            fn = setting.click_option()(fn)
        return fn

    return decorate


def resolved(role: str, opts: dict[str, Any]) -> dict[str, Any]:
    """`opts` from click, plus the environment-only settings of `role` (unless `opts` has them
    already), lists split."""
    values = dict(opts)
    for setting in for_role(role):
        if not setting.flag:
            values[setting.name] = (values.get(setting.name) or os.environ.get(setting.envvar)
                                    or setting.default)
        if setting.split and isinstance(values.get(setting.name), str):
            values[setting.name] = [v.strip() for v in values[setting.name].split(",")
                                    if v.strip()]
    return values


def config_values(role: str, opts: dict[str, Any], config: type) -> dict[str, Any]:
    """Keyword arguments for the `config` dataclass of `role`: every setting that names one of
    its fields and has a value (None leaves the dataclass default)."""
    fields = {f.name for f in dataclasses.fields(config)}
    values = resolved(role, opts)
    return {s.target: values[s.name] for s in for_role(role)
            if s.target in fields and values.get(s.name) is not None}


def forwarded(role: str, opts: dict[str, Any]) -> list[str]:
    """The command-line flags that give a child of `role` the values in `opts`."""
    argv: list[str] = []
    for setting in for_role(role):
        value = opts.get(setting.name)
        if not setting.flag or value is None or value is False:
            continue
        argv += [setting.option] if value is True else [setting.option, str(value)]
    return argv
