"""Every limit is defined once (broker/wire/limits.py): the broker, the API and the CLI take
the same page size, the same cap and the same longest wait from it."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from tests.cluster import ROOT, Cluster
from zjobs.api.schemas import ListQuery, ResultQuery
from zjobs.broker.client import plans
from zjobs.broker.client.client import Client
from zjobs.broker.wire import limits as lim
from zjobs.cli import main

PACKAGE = [ROOT / name for name in ("zjobs", "broker", "worker", "api")]
# Names of a request's bounds: a module other than limits.py that binds one of these to a
# number keeps a copy of its own.
BOUND_WORDS = ("LIST", "WAIT", "PAGE", "CAPACITY", "PREFETCH")
# The Python client is rewritten elsewhere (issue 24, typed clients): its LOG_PAGE and
# REPLAY_PAGE are checked equal to the limits below until it imports them.
NOT_YET = {ROOT / "broker" / "client" / "plans.py"}


def _zjobs(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zjobs", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def _numeric_bounds(path: Path) -> list[str]:
    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, int | float):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                name = getattr(target, "id", "")
                if any(word in name for word in BOUND_WORDS) and "MAX" in name \
                        or "PAGE" in name or name.startswith(("DEFAULT_LIST", "LIST_")):
                    found.append(f"{path.relative_to(ROOT)}: {name}")
    return found


def _bounds(field: Any) -> dict[str, Any]:
    return {k: getattr(m, k) for m in field.metadata for k in ("ge", "le") if hasattr(m, k)}


def test_no_module_but_limits_defines_a_page_wait_or_ready_bound() -> None:
    limits = ROOT / "broker" / "wire" / "limits.py"
    copies = [found for directory in PACKAGE for path in directory.rglob("*.py")
              if path != limits and path not in NOT_YET for found in _numeric_bounds(path)]
    assert copies == []
    assert plans.LOG_PAGE == plans.REPLAY_PAGE == lim.STREAM_PAGE_DEFAULT


def test_the_api_the_cli_and_the_client_take_the_same_page_and_wait() -> None:
    page = ListQuery.model_fields["limit"]
    assert page.default == lim.LIST_DEFAULT
    assert _bounds(page) == {"ge": 1, "le": lim.LIST_MAX}
    assert _bounds(ResultQuery.model_fields["wait"]) == {"ge": 0, "le": lim.WAIT_MAX_S}
    option = next(p for p in main.commands["list"].params if p.name == "limit")
    assert option.default == lim.LIST_DEFAULT
    assert isinstance(option.type, click.IntRange) and option.type.max == lim.LIST_MAX
    assert inspect.signature(Client.list).parameters["limit"].default == lim.LIST_DEFAULT


def test_zjobs_list_refuses_a_limit_past_the_cap_in_one_line() -> None:
    refused = _zjobs("list", "--limit", str(lim.LIST_MAX + 1))
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0, refused.stderr
    assert f"1<=x<={lim.LIST_MAX}" in refused.stderr


def test_the_broker_pages_by_the_same_default_and_cap(cluster: Cluster) -> None:
    jobs = [{"task": "noop", "queue": "nowhere"} for _ in range(lim.LIST_MAX + 1)]
    with cluster.client() as client:
        client.submit_many(jobs)
        assert len(client.list(queue="nowhere")) == lim.LIST_DEFAULT
        assert len(client.list(queue="nowhere", limit=lim.LIST_MAX + 50)) == lim.LIST_MAX
    shown = _zjobs("list", "--queue", "nowhere", "--limit", str(lim.LIST_MAX), "--json",
                   env=cluster.env())
    assert shown.returncode == 0, shown.stderr
    assert len(json.loads(shown.stdout)["jobs"]) == lim.LIST_MAX
