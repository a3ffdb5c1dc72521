"""The fleet health page, read in a real headless Chromium (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from sample_reports import HOSTILE_NAME, HOSTILE_REASON, mixed_report

from presencesync.fleet_page import render

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "artifacts" / "fleet-page.png"  # CI keeps artifacts/
TODAY = date(2026, 12, 1)


@pytest.fixture
def page(browser, tmp_path):
    report = mixed_report(300, TODAY)
    path = tmp_path / "fleet.html"
    path.write_text(render(report, TODAY), encoding="utf-8")
    context = browser.new_context(viewport={"width": 1200, "height": 1000}, offline=True)
    opened = context.new_page()
    requests: list[str] = []
    opened.on("request", lambda request: requests.append(request.url))
    opened.goto(path.as_uri())
    yield opened, report, requests
    context.close()


def test_the_page_reads_right_in_a_browser(page):
    tab, report, requests = page
    tenants = report["tenants"]
    assert requests == [tab.url]  # self-contained: nothing fetched but the file itself
    counts = {li.get_attribute("data-count"): int(li.inner_text().split()[-1]) for li in tab.query_selector_all(
        "[data-count]")}
    assert counts == {r: sum(t["result"] == r for t in tenants) for r in ("failed", "drifted", "changes", "ok")}
    rows = tab.query_selector_all("tbody tr")
    assert len(rows) == 300
    results = [row.get_attribute("data-result") for row in rows]
    order = ["failed", "drifted", "changes", "ok"]
    assert results == sorted(results, key=order.index)  # worst first
    failed = [t for t in tenants if t["result"] == "failed"]
    soonest = min(failed, key=lambda t: (t["clientSecretEndDate"], t["stack"]))
    assert rows[0].query_selector("th").inner_text() == soonest["stack"]
    assert [h.inner_text() for h in tab.query_selector_all("thead th")][:3] == ["Tenant", "Result", "Reasons"]
    assert all(h.get_attribute("scope") == "col" for h in tab.query_selector_all("thead th"))
    # Results are labelled, not only coloured.
    assert rows[0].query_selector(".result").inner_text() == "FAILED"
    # The filter hides the others, without a server.
    for result in ("failed", "drifted", "changes"):
        tab.uncheck(f"#filter input[value={result}]")
    visible = [row for row in tab.query_selector_all("tbody tr") if row.is_visible()]
    assert len(visible) == counts["ok"] and {row.get_attribute("data-result") for row in visible} == {"ok"}
    assert tab.inner_text("#shown") == f"{counts['ok']} shown"
    tab.check("#filter input[value=failed]")
    assert sum(row.is_visible() for row in tab.query_selector_all("tbody tr")) == counts["ok"] + counts["failed"]
    # One mark per secret: the current one of each tenant, and the previous one where it rotates.
    secrets = sum(1 + ("previousClientSecretEndDate" in t) for t in tenants)
    assert len(tab.query_selector_all("#timeline circle.mark")) == secrets
    assert tab.query_selector("#timeline #today") is not None
    assert "30-day warning" in tab.text_content("#timeline")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    tab.check("#filter input[value=drifted]")
    tab.screenshot(path=str(SCREENSHOT), full_page=False)


def test_hostile_names_and_reasons_render_as_text(page):
    tab, _, _ = page
    assert tab.evaluate("window.__pwned") is None  # no planted script ran
    assert HOSTILE_NAME in [th.inner_text() for th in tab.query_selector_all("tbody th")]
    assert HOSTILE_REASON in tab.inner_text("tbody")


def test_fleet_report_renders_a_page_from_reports(tmp_path):
    first, second = mixed_report(3, TODAY), mixed_report(2, TODAY)
    second["tenants"] = [{**t, "stack": f"other-{t['stack']}"} for t in second["tenants"]]
    paths = []
    for index, report in enumerate((first, second)):
        paths.append(tmp_path / f"r{index}.json")
        paths[-1].write_text(json.dumps(report))
    html = tmp_path / "page.html"
    done = subprocess.run([sys.executable, "-m", "presencesync", "fleet", "report", *map(str, paths), "--html",
                           str(html)], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    text = html.read_text()
    assert text.count("<tr data-result=") == 5 and "other-customer-001" in text
    (tmp_path / "bad.json").write_text("[]")
    bad = subprocess.run([sys.executable, "-m", "presencesync", "fleet", "report", str(tmp_path / "bad.json"),
                          "--html", str(html)], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 1 and bad.stderr.startswith(f"error: {tmp_path / 'bad.json'}: not a fleet report")
