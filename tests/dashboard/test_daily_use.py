"""The dashboard for daily use, in headless Chromium on a live cluster: schedules, dependency
links, the worker view, pages through the whole job list, several statuses at once, the bulk
actions, and a throughput chart that a reload does not reset. Each is checked against the
broker, not only the page."""

from __future__ import annotations

from pathlib import Path

from tests.api.server import start_api
from tests.cluster import Cluster
from tests.waiting import wait_until

from .test_dashboard import _screenshot, browser_page, pytestmark  # noqa: F401 - fixture, skip

OPEN = "#conn-status[data-state='open']"


def _open(page, api) -> None:
    page.goto(api.base_url + "/")
    page.wait_for_selector(OPEN, timeout=20_000)


def _row_ids(page) -> list[str]:
    return page.eval_on_selector_all("#jobs-table tbody tr",
                                     "rows => rows.map(r => r.dataset.jobId)")


def test_schedules_dependency_links_and_the_worker_view(cluster: Cluster, browser_page,  # noqa: F811
                                                        tmp_path: Path) -> None:
    cluster.start_worker("daily-1")
    api = start_api(cluster)
    page = browser_page
    _open(page, api)
    with api.client() as http:
        # a schedule: shown with its next run, seen firing, removed with the button
        assert http.put("/schedules/tick", json={"task": "noop", "every_s": 1}).status_code == 200
        row = "#schedules-table tr[data-schedule='tick']"
        page.wait_for_selector(f"{row} .s-when:has-text('every 1 s')", timeout=20_000)
        page.wait_for_selector(f"{row}:not([data-last-run=''])", timeout=20_000)
        assert http.get("/schedules/tick").json()["last_run_at"] is not None
        assert page.inner_text(f"{row} .s-next") not in ("", "–")  # when it fires next
        _screenshot(page, tmp_path / "dashboard-schedules.png")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click(f"{row} .schedule-remove")
        page.wait_for_selector(row, state="detached", timeout=10_000)
        assert http.get("/schedules/tick").status_code == 404

        # dependencies: the child links to its parent, the parent to its child
        release = tmp_path / "release"
        parent = http.post("/jobs", json={"task": "wait_for_file", "args": [str(release)]}).json()
        child = http.post("/jobs", json={"task": "add", "args": [2, 3],
                                         "depends_on": [parent["id"]]}).json()
        assert child["status"] == "deferred"
        page.evaluate(f"zjobsDashboard.openDetail({child['id']!r})")
        page.wait_for_selector("#job-detail[data-status='deferred']", timeout=10_000)
        link = f"#detail-depends-on li[data-job-id='{parent['id']}']"
        page.wait_for_selector(f"{link} .badge[data-status='running']", timeout=20_000)
        page.click(f"{link} a")
        page.wait_for_selector(f"#detail-id:has-text('{parent['id']}')", timeout=10_000)
        dependent = f"#detail-dependents li[data-job-id='{child['id']}']"
        page.wait_for_selector(f"{dependent} .badge[data-status='deferred']", timeout=10_000)
        _screenshot(page, tmp_path / "dashboard-dependencies.png")

        # the worker view: its running job, as a link, and its counters
        page.keyboard.press("Escape")
        page.click("#workers-table tr[data-worker='daily-1']")
        page.wait_for_selector("#worker-detail:not([hidden])", timeout=10_000)
        page.wait_for_selector(f"#worker-running li[data-job-id='{parent['id']}']", timeout=10_000)
        page.wait_for_selector("#worker-jobs li[data-job-id]", timeout=10_000)
        _screenshot(page, tmp_path / "dashboard-worker.png")

        release.write_text("go")
        assert http.get(f"/jobs/{child['id']}/result", params={"wait": 30}).json()["result"] == 5
        page.wait_for_selector("#worker-running li.none", timeout=15_000)  # idle again
        processed = http.get("/workers/daily-1").json()["processed"]
        page.wait_for_function(
            "n => Number(document.querySelector(\"#worker-fields [data-field='processed'] dd\")"
            ".textContent.replace(/,/g, '')) >= n", arg=processed, timeout=15_000)
        page.click("#btn-close-worker")
        assert page.is_hidden("#worker-detail")


def test_pages_statuses_bulk_actions_and_history(cluster: Cluster, browser_page,  # noqa: F811
                                                 tmp_path: Path) -> None:
    cluster.start_worker("daily-2", "--concurrency", "4")
    api = start_api(cluster)
    page = browser_page
    with api.client() as http:
        per_page = http.get("/meta").json()["limits"]["list_limit"]["default"]
        done = [j["id"] for j in http.post("/jobs", json={"jobs": [
            {"task": "add", "args": [i, 1]} for i in range(2 * per_page + 30)]}).json()["jobs"]]
        failed = http.post("/jobs", json={"task": "add", "args": ["a", 1]}).json()["id"]
        held = http.post("/jobs", json={"task": "noop", "queue": "nowhere"}).json()["id"]
        http.post(f"/jobs/{held}/cancel")
        for job_id in [*done, failed]:
            http.get(f"/jobs/{job_id}/result", params={"wait": 30})

        # the throughput chart starts from the broker's history, not from zero
        _open(page, api)
        page.wait_for_function("zjobsDashboard.state.historyEnd != null", timeout=10_000)
        page.wait_for_function(
            "Number((document.querySelector('#sub-succeeded').textContent"
            ".match(/\\d+/) || [0])[0]) >= 100",
            timeout=10_000)

        # pages: each older page holds the page of jobs before the last one shown, to the end
        page.wait_for_selector(f"#jobs-table tr[data-job-id='{held}']", timeout=20_000)
        live = _row_ids(page)
        seen = set(live)
        pages = []
        while page.is_enabled("#page-older"):
            page.click("#page-older")
            page.wait_for_selector(f".panel-jobs[data-page='{len(pages) + 2}']", timeout=10_000)
            ids = _row_ids(page)
            assert ids and max(ids) < min(pages[-1] if pages else live), "an older page is older"
            assert not seen & set(ids), "no job shows on two pages"
            seen |= set(ids)
            pages.append(ids)
        assert seen == {*done, failed, held}, "the pages cover the whole job list"
        assert len(pages[0]) == per_page
        page.click("#page-newer")
        page.wait_for_selector(f".panel-jobs[data-page='{len(pages)}']", timeout=10_000)
        assert _row_ids(page) == (pages[-2] if len(pages) > 1 else live)
        page.click("#page-newest")
        page.wait_for_selector("#page-label:has-text('live')", timeout=10_000)

        # several statuses at once: the page asks GET /jobs for both, and shows only those
        with page.expect_request(lambda r: "status=failed" in r.url
                                 and "status=cancelled" in r.url) as asked:
            page.click("#filter-statuses .chip-toggle[data-status='failed']")
            page.click("#filter-statuses .chip-toggle[data-status='cancelled']")
        assert "/jobs?" in asked.value.url
        # both rows were on the live page already: wait for the filtered list to replace it
        page.wait_for_function(
            "ids => ids.every(id => document.querySelector(`#jobs-table tr[data-job-id='${id}']`))"
            " && [...document.querySelectorAll('#jobs-table tbody tr')]"
            ".every(r => ['failed', 'cancelled'].includes(r.dataset.status))",
            arg=[failed, held], timeout=10_000)
        shown = page.eval_on_selector_all("#jobs-table tbody tr",
                                          "rows => rows.map(r => r.dataset.status)")
        assert set(shown) == {"failed", "cancelled"}
        assert len(shown) == 2  # the 130 succeeded jobs are gone, not merely joined
        _screenshot(page, tmp_path / "dashboard-filter.png")

        # bulk: retry all failed, after a confirmation
        page.wait_for_selector("#btn-retry-failed:has-text('(1)')", timeout=10_000)
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.click("#btn-retry-failed")
        assert http.get(f"/jobs/{failed}").json()["attempts"] == 1
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#btn-retry-failed")
        page.wait_for_selector(".toast:has-text('1 failed job queued again')", timeout=10_000)
        wait_until(lambda: http.get(f"/jobs/{failed}").json()["attempts"] == 2
                   and http.get(f"/jobs/{failed}").json()["status"] == "failed", 30,
                   message="the failed job to run (and fail) again")

        # bulk: purge the waiting jobs of every queue, after a confirmation
        waiting = [j["id"] for j in http.post("/jobs", json={"jobs": [
            {"task": "noop", "queue": "nowhere"} for _ in range(3)]}).json()["jobs"]]
        page.wait_for_selector("#btn-purge-waiting:has-text('(3)')", timeout=10_000)
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#btn-purge-waiting")
        wait_until(lambda: all(http.get(f"/jobs/{j}").json()["status"] == "cancelled"
                               for j in waiting), 15, message="the purged jobs to be cancelled")
