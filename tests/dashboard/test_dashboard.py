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
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1250})
            yield page
        finally:
            browser.close()


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

    page.wait_for_function("Number(document.querySelector('#count-succeeded').textContent) >= 24",
                           timeout=20_000)
    _screenshot(page, tmp_path / "dashboard.png")
    row.click()
    page.wait_for_selector("#job-detail:not([hidden])", timeout=10_000)
    page.wait_for_function("document.querySelectorAll('#job-log .ll').length >= 3",
                           timeout=20_000)
    assert page.evaluate("window.__noReload") == "still here"
    _screenshot(page, tmp_path / "dashboard-job.png")
    httpx.get(f"{api.base_url}/health", timeout=5).raise_for_status()


def _screenshot(page, path: Path) -> None:
    """Saved with the test's files; ZJOBS_UPDATE_SCREENSHOT=1 also refreshes docs/.

    The README shows the copies in docs/.
    """
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    if os.environ.get("ZJOBS_UPDATE_SCREENSHOT"):
        shutil.copy(path, DOCS / path.name)


def test_a_dead_broker_is_shown_as_unreachable(cluster: Cluster, browser_page,
                                               tmp_path: Path) -> None:
    api = start_api(cluster)
    page = browser_page
    page.goto(api.base_url + "/")
    page.wait_for_selector("#conn-status[data-state='open'][data-broker='up']", timeout=20_000)
    assert page.locator("#conn-status .conn-label").inner_text() == "Live"
    cluster.kill(cluster.broker)
    page.wait_for_selector("#conn-status[data-state='closed'][data-broker='down']",
                           timeout=20_000)
    label = page.locator("#conn-status .conn-label").inner_text()
    assert re.fullmatch(r"Broker unreachable since \d\d:\d\d:\d\d", label), label
    health = httpx.get(f"{api.base_url}/health", timeout=5)
    assert health.status_code == 503 and health.json()["broker"]["reachable"] is False
    _screenshot(page, tmp_path / "dashboard-broker-down.png")
    cluster.start_broker()
    page.wait_for_selector("#conn-status[data-state='open'][data-broker='up']", timeout=30_000)
    assert page.locator("#conn-status .conn-label").inner_text() == "Live"


def test_a_job_no_worker_can_run_shows_as_waiting(cluster: Cluster, browser_page) -> None:
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
