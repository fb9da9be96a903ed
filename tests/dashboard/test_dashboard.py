"""The dashboard in headless Chromium on a live cluster: jobs appear and finish without a reload."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.server import start_api
from tests.cluster import Cluster

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DOCS = Path(__file__).resolve().parents[2] / "docs"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                "(scripts/test installs it)")


@pytest.fixture
def browser_page() -> Iterator:
    """A page in headless Chromium; the test fails if the page's code threw (an uncaught
    error, a module that did not load, a renderer that failed)."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1250})
            page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
            page.on("console", lambda msg: errors.append(f"console: {msg.text}")
                    if msg.type == "error" and not msg.text.startswith(NETWORK_ERROR) else None)
            yield page
        finally:
            browser.close()
    assert errors == [], "the page's code failed"


# what Chromium logs for an HTTP error answer (a 503 while the broker is down): not a bug
NETWORK_ERROR = "Failed to load resource"


def test_jobs_appear_and_finish_live(cluster: Cluster, browser_page, tmp_path: Path) -> None:
    cluster.start_worker("wall-1", "--concurrency", "4")
    cluster.start_worker("wall-2", "--concurrency", "4")
    api = start_api(cluster, token="s3cret")
    page = browser_page
    page.goto(f"{api.base_url}/?token=s3cret")
    page.wait_for_selector("#conn-status[data-state='open']", timeout=20_000)
    page.evaluate("window.__noReload = 'still here'")
    page.wait_for_selector("#workers-table tr[data-worker='wall-1']", timeout=20_000)

    with api.client() as http:
        ids = [http.post("/jobs", json={"task": "chatty", "args": [3, 0.3]}).json()["id"]
               for _ in range(4)]
        ids += [job["id"] for job in http.post("/jobs", json={"jobs": [
            {"task": "add", "args": [i, i]} for i in range(20)]}).json()["jobs"]]
        failing = http.post("/jobs", json={"task": "flaky", "args": [str(tmp_path / "n"), 9]})
        ids.append(failing.json()["id"])
        row = page.locator(f"#jobs-table tr[data-job-id='{ids[0]}']")
        row.wait_for(timeout=20_000)
        for job_id in ids:
            expected = "failed" if job_id == ids[-1] else "succeeded"
            page.wait_for_selector(
                f"#jobs-table tr[data-job-id='{job_id}'][data-status='{expected}']",
                timeout=30_000)
        assert http.get(f"/jobs/{ids[0]}").json()["status"] == "succeeded"

    page.wait_for_function("Number(document.querySelector('#count-succeeded').dataset.value) >= 24",
                           timeout=20_000)
    _screenshot(page, tmp_path / "dashboard-live.png", None)  # docs/dashboard.png: test_layout
    row.click()
    page.wait_for_selector("#job-detail:not([hidden])", timeout=10_000)
    page.wait_for_function("document.querySelectorAll('#job-log .ll').length >= 3",
                           timeout=20_000)
    page.wait_for_selector("#detail-args:has-text('args:')", timeout=10_000)  # GET /jobs/{id}
    assert page.evaluate("window.__noReload") == "still here"
    _screenshot(page, tmp_path / "dashboard-job.png")
    httpx.get(f"{api.base_url}/health", timeout=5).raise_for_status()


def _screenshot(page, path: Path, docs_name: str | None = "") -> None:
    """Saved with the test's files; ZJOBS_UPDATE_SCREENSHOT=1 also refreshes docs/ (as
    `docs_name`, by default the file's own name; None: not a picture of the docs).

    The README shows the copies in docs/.
    """
    page.screenshot(path=str(path), animations="disabled")  # not caught mid slide-in
    assert path.stat().st_size > 10_000
    if docs_name is not None and os.environ.get("ZJOBS_UPDATE_SCREENSHOT"):
        shutil.copy(path, DOCS / (docs_name or path.name))


# the live counts: each container marked stale, and what it greys out
STALEABLE = {"#counters": "#counters .tile", ".hstats": ".hstats .hstat",
             ".panel-queues": ".panel-queues .queues",
             ".panel-workers": ".panel-workers .table-scroll"}


def test_a_dead_broker_is_shown_as_unreachable(cluster: Cluster, browser_page,
                                               tmp_path: Path) -> None:
    cluster.start_worker("w-live")
    api = start_api(cluster)
    page = browser_page
    page.goto(api.base_url + "/")
    page.wait_for_selector("#conn-status[data-state='open'][data-broker='up']", timeout=20_000)
    page.wait_for_selector("#workers-table tr[data-worker='w-live']", timeout=20_000)
    assert page.locator("#conn-status .conn-label").inner_text() == "Live"
    for selector in STALEABLE:
        assert page.get_attribute(selector, "data-stale") is None, selector
    cluster.kill(cluster.broker)
    page.wait_for_selector("#conn-status[data-state='closed'][data-broker='down']",
                           timeout=20_000)
    label = page.locator("#conn-status .conn-label").inner_text()
    assert re.fullmatch(r"Broker unreachable since \d\d:\d\d:\d\d", label), label
    health = httpx.get(f"{api.base_url}/health", timeout=5)
    assert health.status_code == 503 and health.json()["broker"]["reachable"] is False
    for selector, greyed in STALEABLE.items():  # the last counts seen: greyed, marked so
        marked = page.get_attribute(selector, "data-stale") or ""
        assert re.fullmatch(r"stale · as of \d\d:\d\d:\d\d", marked), (selector, marked)
        page.wait_for_function(
            "s => Number(getComputedStyle(document.querySelector(s)).opacity) < 0.6",
            arg=greyed, timeout=5_000)
    _screenshot(page, tmp_path / "dashboard-broker-down.png")
    cluster.start_broker()
    page.wait_for_selector("#conn-status[data-state='open'][data-broker='up']", timeout=30_000)
    assert page.locator("#conn-status .conn-label").inner_text() == "Live"
    for selector in STALEABLE:
        assert page.get_attribute(selector, "data-stale") is None, selector


def test_a_job_no_worker_can_run_shows_as_waiting(cluster: Cluster, browser_page,
                                                  tmp_path: Path) -> None:
    cluster.start_worker("w1")
    api = start_api(cluster)
    page = browser_page
    page.goto(api.base_url + "/")
    with api.client() as http:
        assert http.post("/jobs", json={"task": "nobody_has_this", "queue": "lonely"}
                         ).status_code == 201
        row = "#queues .queue-row[data-queue='lonely'][data-unserved='1']"
        page.wait_for_selector(row, timeout=20_000)
        assert page.locator(f"{row} .queue-unserved").inner_text() == \
            "1 waiting for a worker that can run them"
        assert http.get("/queues").json()["queues"]["lonely"]["unserved"] == 1

        # the job's own view says why, and how to start a worker that can run it
        job = http.post("/jobs", json={"task": "nobody_has_this"}).json()
        assert http.get(f"/jobs/{job['id']}").json()["unserved"] is True
        page.evaluate(f"zjobsDashboard.openDetail({job['id']!r})")
        page.wait_for_selector("#detail-unserved:not([hidden])", timeout=10_000)
        assert page.inner_text("#detail-unserved-why") == \
            "The one live worker of queue “default” (w1) does not have the task “nobody_has_this”."
        assert page.inner_text("#detail-unserved-fix") == "zjobs worker --tasks MODULE"
        _screenshot(page, tmp_path / "dashboard-unserved.png")
        served = http.post("/jobs", json={"task": "sleep", "args": [30], "queue": "lonely"})
        page.evaluate(f"zjobsDashboard.openDetail({served.json()['id']!r})")
        page.wait_for_selector("#detail-unserved-why:has-text('No live worker serves queue')",
                               timeout=10_000)
        assert page.inner_text("#detail-unserved-fix") == \
            "zjobs worker --tasks MODULE --queues lonely"
        cluster.start_worker("w-lonely", "--queues", "lonely")  # now one can: the note goes
        page.wait_for_selector("#detail-unserved", state="hidden", timeout=20_000)
