"""The dashboard's queue controls in headless Chromium: the limit shown, pause and resume,
and purge with a confirmation, each checked against the broker."""

from __future__ import annotations

from pathlib import Path

from tests.api.server import start_api
from tests.cluster import Cluster
from tests.waiting import holds_for, wait_until

from .test_dashboard import _screenshot, browser_page, pytestmark  # noqa: F401 - fixture, skip

ROW = "#queues .queue-row[data-queue='default']"


def test_pause_resume_purge_and_the_limit(cluster: Cluster, browser_page,  # noqa: F811
                                          tmp_path: Path) -> None:
    cluster.start_worker("qc-1")
    api = start_api(cluster)
    page = browser_page
    page.goto(api.base_url + "/")
    page.wait_for_selector("#conn-status[data-state='open']", timeout=20_000)
    with api.client() as http:
        def status(job_id: str) -> str:
            return http.get(f"/jobs/{job_id}").json()["status"]

        assert http.patch("/queues/default", json={"rate_limit": 5}).status_code == 200
        page.wait_for_selector(f"{ROW} .queue-limit:has-text('≤ 5/s')", timeout=20_000)

        page.click(f"{ROW} .queue-pause")  # Pause
        page.wait_for_selector(f"{ROW}[data-paused='true'] .queue-pause:has-text('Resume')",
                               timeout=10_000)
        assert http.get("/queues").json()["queues"]["default"]["paused"] is True
        held = http.post("/jobs", json={"task": "add", "args": [1, 2]}).json()["id"]
        holds_for(lambda: status(held) == "queued", 1.0, message="the paused queue's job")
        _screenshot(page, tmp_path / "dashboard-queues.png")

        page.click(f"{ROW} .queue-pause")  # Resume
        page.wait_for_selector(f"{ROW}[data-paused='false']", timeout=10_000)
        assert http.get(f"/jobs/{held}/result", params={"wait": 30}).json()["result"] == 3

        page.click(f"{ROW} .queue-pause")  # paused again, so that jobs wait to be purged
        page.wait_for_selector(f"{ROW}[data-paused='true']", timeout=10_000)
        waiting = [j["id"] for j in http.post("/jobs", json={"jobs": [
            {"task": "add", "args": [i, i]} for i in range(3)]}).json()["jobs"]]
        page.once("dialog", lambda dialog: dialog.dismiss())  # "no": nothing happens
        page.click(f"{ROW} .queue-purge")
        holds_for(lambda: all(status(j) == "queued" for j in waiting), 0.5,
                  message="jobs kept when the purge is not confirmed")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click(f"{ROW} .queue-purge")
        wait_until(lambda: all(status(j) == "cancelled" for j in waiting), 15,
                   message="the purged jobs to be cancelled")
        page.wait_for_selector(".toast:has-text('3 cancelled')", timeout=10_000)
