"""The dashboard's layout at the widths people use, in headless Chromium, on a cluster with a
long history: each state tile once, and nothing (tile, header, table cell) overflowing or cut.

The store is given a history first (a broker that has run 150,000 jobs), by copying the rows
of jobs a real worker ran; the broker then starts on it, as one restarted on an old store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.server import ApiServer, start_api
from tests.cluster import Cluster
from zjobs.broker.wire.schema import STATES

from .test_dashboard import _screenshot, browser_page, pytestmark  # noqa: F401 - fixture, skip

WIDTHS = (1280, 1440, 1920)
HISTORY = {"succeeded": 123_456, "failed": 2_345, "cancelled": 345}
WORKERS = ("ip-10-0-12-34-1234567-w1", "ip-10-0-12-34-1234567-w2")

# Every element whose content must fit: a cut number, label or name is a bug.
OVERFLOWS = """() => {
  const bad = new Set();
  const name = (e) => e.id ? '#' + e.id
    : e.tagName.toLowerCase() + '.' + [...e.classList].join('.');
  const where = (e) => {
    const parts = [];
    for (let x = e; x && parts.length < 3; x = x.parentElement) parts.unshift(name(x));
    return parts.join(' > ') + ' "' + (e.textContent || '').trim().slice(0, 30) + '"';
  };
  const shown = (e) => e.getClientRects().length > 0;
  const selectors = ['.topbar', '.topbar *', '.tiles', '.tile', '.tile *', '.panel-head h2',
                     'th', 'td', 'td *', '.table-scroll', '.queue-row *', '.chart-stats *',
                     '.counters-strip *'];
  for (const e of document.querySelectorAll(selectors.join(','))) {
    if (!shown(e)) continue;
    if (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).display !== 'inline') {
      bad.add(where(e) + ' overflows: ' + e.scrollWidth + ' > ' + e.clientWidth);
    }
  }
  for (const e of document.querySelectorAll('.panel, .tile, .topbar > *, td, th')) {
    if (!shown(e)) continue;
    const r = e.getBoundingClientRect();
    const box = (e.closest('.table-scroll') || document.documentElement).getBoundingClientRect();
    if (r.right > Math.min(box.right, window.innerWidth) + 1) {
      bad.add(where(e) + ' ends past its box: ' + r.right + ' > ' + box.right);
    }
  }
  return [...bad];
}"""


def _seed_history(cluster: Cluster) -> None:
    """Run one job of each ending for real, then copy its row into the store's history."""
    client = cluster.client()
    ok = client.submit("add", 1, 2)
    bad = client.submit("flaky", str(cluster.data_dir / "never"), 9)
    gone = client.submit("sleep", 30, queue="nobody-serves-this")
    client.cancel(gone)
    for job_id in (ok, bad):
        client.wait(job_id, timeout=30)
    cluster.kill(cluster.broker, sig=15)
    db = sqlite3.connect(cluster.data_dir / "store" / "zjobs.db")
    try:
        columns = [row[1] for row in db.execute("PRAGMA table_info(jobs)")]
        picked = ", ".join("printf('%s-%07d', id, n)" if c == "id" else c for c in columns)
        for status, copies in HISTORY.items():
            db.execute(f"""WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k
                                                    WHERE n < ?)
                           INSERT INTO jobs ({", ".join(columns)})
                           SELECT {picked} FROM jobs, k WHERE status = ?""", (copies, status))
        db.commit()
    finally:
        db.close()


@pytest.fixture
def busy(tmp_path: Path) -> Iterator[tuple[Cluster, ApiServer]]:
    """A cluster with a long history, two workers with cloud host names, a job running, a
    backlog no worker serves and a schedule. Heartbeats at the default 1 s: with the tests'
    0.25 s, a 12,345-job submit on a loaded machine can cost a worker its registration (and
    the counters the page shows)."""
    cluster = Cluster(tmp_path, heartbeat_interval=1.0)
    try:
        yield from _busy(cluster)
    finally:
        cluster.close()


def _busy(cluster: Cluster) -> Iterator[tuple[Cluster, ApiServer]]:
    cluster.start_broker()
    seeder = cluster.start_worker("seed")
    _seed_history(cluster)
    cluster.kill(seeder, sig=15)
    cluster.start_broker()
    for name in WORKERS:
        cluster.start_worker(name, "--queues", "default,emails,reports-nightly", wait=False)
    for name in WORKERS:
        cluster.wait_for_worker(name)
    client = cluster.client()
    done = client.submit_many([{"task": "add", "args": [i, i]} for i in range(3_000)] +
                              [{"task": "flaky", "args": [str(cluster.data_dir / f"n{i}"), 9]}
                               for i in range(40)])  # the chart's last minutes
    client.wait_many(done, timeout=60)
    client.submit("sleep", 60)
    client.submit_many([{"task": "add", "args": [i, i], "queue": "invoices-eu-central"}
                        for i in range(12_345)])
    client.schedule("nightly-report-for-finance", "add", 1, 2, cron="0 3 * * *")
    yield cluster, start_api(cluster)


def test_every_state_tile_once_and_nothing_overflows(busy, browser_page,  # noqa: F811
                                                     tmp_path: Path) -> None:
    cluster, api = busy
    page = browser_page
    problems: dict[int, list[str]] = {}
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 1100})
        page.goto(api.base_url + "/")
        page.wait_for_selector("#conn-status[data-state='open']", timeout=20_000)
        page.wait_for_selector("#workers-table tr[data-worker]", timeout=20_000)
        page.wait_for_selector("#schedules-table tr[data-schedule]", timeout=20_000)
        page.wait_for_function("document.querySelector('#count-succeeded').dataset.value >= "
                               f"{HISTORY['succeeded']}", timeout=20_000)
        for state in STATES:
            assert page.locator(f"#counters .tile[data-status='{state}']").count() == 1, state
            assert page.locator(f"[id='count-{state}']").count() == 1, state
        problems[width] = page.evaluate(OVERFLOWS)
        _screenshot(page, tmp_path / f"layout-{width}.png",
                    "dashboard.png" if width == 1440 else None)
    assert not any(problems.values()), "\n".join(
        f"at {width} px: {problem}" for width, found in problems.items() for problem in found)
