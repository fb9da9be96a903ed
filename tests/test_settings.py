"""The settings table is the one definition: commands, configs, `zjobs up` and the README agree."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

import click

from zjobs.api.app import create_app
from zjobs.api.context import Settings as ApiSettings
from zjobs.broker.client.client import DEFAULT_FRONTEND, AsyncClient, Client
from zjobs.broker.server import BrokerConfig
from zjobs.broker.wire.protocol import DEFAULT_MAX_MESSAGE
from zjobs.broker.wire.settings import (
    API,
    BROKER,
    CLIENT,
    MIB,
    SETTINGS,
    UP,
    WORKER,
    config_values,
    default,
    for_role,
    forwarded,
)
from zjobs.cli import main
from zjobs.worker.runtime import WorkerConfig

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CONFIGS = {BROKER: BrokerConfig, WORKER: WorkerConfig, API: ApiSettings}
NOT_CONFIG = {"curve_dir", "log_json", "log_level", "host", "port", "access_log", "max_message",
              "api_workers", "mdp", "open"}  # read by the process runners, not the app


def _config_section() -> str:
    return README.split("## Configuration", 1)[1].split("\n## ", 1)[0]


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    table = _config_section()
    for setting in SETTINGS:
        assert f"`{setting.envvar}`" in table, setting.name
        if setting.flag:
            assert re.search(rf"`{setting.option}[` ]", table), setting.name


def test_every_command_takes_exactly_the_settings_of_its_role() -> None:
    commands = {BROKER: "broker", WORKER: "worker", API: "api"}
    for role, name in commands.items():
        params = {p.name for p in main.commands[name].params if isinstance(p, click.Option)}
        assert params == {s.name for s in for_role(role) if s.flag}, role
    up = {p.name for p in main.commands["up"].params if isinstance(p, click.Option)}
    assert up == {s.name for s in for_role(BROKER, WORKER, API, UP) if s.flag}
    status = {p.name for p in main.commands["status"].params if isinstance(p, click.Option)}
    assert {s.name for s in for_role(CLIENT)} <= status


def test_each_setting_with_a_config_field_fills_a_real_field() -> None:
    for setting in SETTINGS:
        if setting.name in NOT_CONFIG or UP in setting.roles or CLIENT in setting.roles \
                and len(setting.roles) == 1:
            continue
        configs = [CONFIGS[r] for r in setting.roles if r in CONFIGS]
        fields = {f.name for c in configs for f in dataclasses.fields(c)}
        assert setting.target in fields, setting.name


def test_what_up_forwards_parses_back_to_the_same_values() -> None:
    given = {"frontend": "tcp://127.0.0.1:1", "heartbeat_interval": 0.5, "queues": "a,b",
             "allow_exec": True, "default_timeout": 30.0, "data_dir": "/tmp/x", "port": 9,
             "sse_ping": 3.0, "log_json": True}
    for role, name in ((BROKER, "broker"), (WORKER, "worker"), (API, "api")):
        argv = forwarded(role, given)
        ctx = main.commands[name].make_context(name, argv)
        for setting in for_role(role):
            if setting.name in given:
                assert ctx.params[setting.name] == given[setting.name], (role, setting.name)


def test_config_values_split_lists_and_leave_unset_ones_to_the_defaults() -> None:
    ctx = main.commands["worker"].make_context("worker", ["--queues", "a, b", "--tasks", "m"])
    values = config_values(WORKER, ctx.params, WorkerConfig)
    assert values["queues"] == ["a", "b"] and values["tasks"] == ["m"]
    assert "concurrency" not in values and "name" not in values
    broker = main.commands["broker"].make_context("broker", ["--default-timeout", "7"])
    assert config_values(BROKER, broker.params, BrokerConfig)["default_timeout_s"] == 7.0


# ------------------------------------------------------------------ one definition of defaults

# The literal defaults most tempting to retype; only the settings table may hold them.
DEFAULT_LITERALS = ('"tcp://127.0.0.1:5555"', '"tcp://127.0.0.1:5556"', '"tcp://127.0.0.1:5557"',
                    "16 * 1024 * 1024", "16 * MIB", "16 << 20", "16_777_216", "16777216")
PACKAGE = [ROOT / name for name in ("zjobs", "broker", "worker", "api", "bench")]  # bench last


def test_each_config_default_is_the_settings_table_default() -> None:
    """A config field filled by a setting starts from the table's default, not a copy."""
    checked = 0
    for role, config in CONFIGS.items():
        made = config()
        for setting in for_role(role):
            if setting.target not in {f.name for f in dataclasses.fields(config)}:
                continue
            expected = setting.default
            if setting.split and expected is not None:
                expected = expected.split(",")
            if expected is None and setting.name in ("concurrency", "tasks", "name"):
                continue  # computed at start: the CPU count, the demo tasks, host-pid
            assert getattr(made, setting.target) == expected, (role, setting.name)
            checked += 1
    assert ApiSettings().max_body == default("max_message")
    assert checked > 30


def test_the_client_the_wire_and_create_app_take_the_table_defaults() -> None:
    assert DEFAULT_FRONTEND == default("frontend")
    for client in (Client, AsyncClient):  # the client's own literal until its rewrite lands
        params = inspect.signature(client).parameters
        assert params["endpoint"].default == default("frontend")
        assert params["timeout"].default == default("broker_timeout")
    assert DEFAULT_MAX_MESSAGE == default("max_message")
    params = inspect.signature(create_app).parameters
    for param, name in (("max_body", "max_message"), ("sse_ping_s", "sse_ping"),
                        ("broker_timeout_s", "api_broker_timeout"),
                        ("body_timeout_s", "api_body_timeout")):
        assert params[param].default == default(name), param


def test_no_module_retypes_a_default_of_the_settings_table() -> None:
    table = ROOT / "broker" / "wire" / "settings.py"
    copies = [f"{path.relative_to(ROOT)}: {literal}"
              for directory in PACKAGE for path in directory.rglob("*.py") if path != table
              for literal in DEFAULT_LITERALS if literal in path.read_text()]
    assert copies == []


def _literal_defaults(tree: ast.AST, names: set[str]) -> list[str]:
    """`name = <literal>` as a parameter default or a class field, for a setting's name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            positional = args.args[len(args.args) - len(args.defaults):]
            pairs = [*zip(positional, args.defaults, strict=True),
                     *zip(args.kwonlyargs, args.kw_defaults, strict=True)]
            found += [f"{a.arg}:{d.lineno}" for a, d in pairs
                      if a.arg in names and isinstance(d, ast.Constant) and d.value is not None]
        elif isinstance(node, ast.ClassDef):
            found += [f"{s.target.id}:{s.lineno}" for s in node.body
                      if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                      and s.target.id in names and isinstance(s.value, ast.Constant)
                      and s.value.value is not None]
    return found


# EngineConfig's defaults (always overwritten by BrokerServer from BrokerConfig) wait for the
# engine's split into smaller modules (issue 24); then they take default(...) too.
NOT_YET: set = set()


def test_no_parameter_or_field_named_after_a_setting_has_a_default_of_its_own() -> None:
    names = {n for s in SETTINGS if s.default is not None for n in (s.name, s.target)}
    table = ROOT / "broker" / "wire" / "settings.py"
    copies = [f"{path.relative_to(ROOT)} {found}"
              for directory in PACKAGE[:-1] for path in directory.rglob("*.py")
              if path != table and path not in NOT_YET
              for found in _literal_defaults(ast.parse(path.read_text()), names)]
    assert copies == [], "take the default from the settings table: settings.default(name)"


def _renderings(value: Any) -> set[str]:
    """How the README's table may show a default: `1.0`, 16 MiB, 7 days, 30 s, 100,000, off."""
    if value is False:
        return {"off", "console", "exit"}
    if isinstance(value, str):
        return {value}
    shown = {str(value), f"{value:,}", f"{value:g} s"}
    if value >= MIB and value % MIB == 0:
        shown.add(f"{value // MIB} MiB")
    if isinstance(value, float) and value >= 86400 and value % 86400 == 0:
        shown.add(f"{value / 86400:g} days")
    return shown


def test_the_readme_configuration_table_shows_each_default_of_the_table() -> None:
    rows = [row for row in _config_section().splitlines() if row.startswith("| ")]
    for setting in SETTINGS:
        if setting.default is None or setting.default is True:
            continue  # said in words: "CPU count", "none (off)"
        row = next(r for r in rows if f"`{setting.envvar}`" in r)
        column = row.rstrip(" |").rsplit(" | ", 1)[1]
        items = [i.replace("`", "").strip() for i in re.split(r", |; ", column)]
        assert any(re.match(re.escape(shown) + r"(?![\w.,])", item)
                   for item in items for shown in _renderings(setting.default)), \
            (setting.name, setting.default, column)
