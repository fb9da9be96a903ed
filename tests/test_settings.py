"""The settings table is the one definition: commands, configs, `zjobs up` and the README agree."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import click

from zjobs.api.context import Settings as ApiSettings
from zjobs.broker.server import BrokerConfig
from zjobs.broker.wire.settings import (
    API,
    BROKER,
    CLIENT,
    SETTINGS,
    UP,
    WORKER,
    config_values,
    for_role,
    forwarded,
)
from zjobs.cli import main
from zjobs.worker.runtime import WorkerConfig

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
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
