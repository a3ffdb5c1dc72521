"""Each sync user's password expiry in the fleet report's readers: beside the client secret's end date on the
health page (headless Chromium) and on the Teams card (Microsoft's adaptivecards renderer), with the secret's
thresholds (30, 14, 7, 3, 1 days; a 30-day warning)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from test_teams_card import TODAY, card_of, renderer  # noqa: F401 (the fixture)

from presencesync.attention import needs_attention, should_post
from presencesync.fleet_page import render


def _day(days: int) -> str:
    return f"{(TODAY + timedelta(days=days)).isoformat()}T00:00:00Z"


def _tenant(stack: str, secret_days: int, passwords: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"stack": stack, "result": "ok", "changes": {}, "seconds": 3.0, "details": [], "notices": [],
            "clientSecretEndDate": _day(secret_days), "syncUserPasswordExpiry": passwords, **extra}


REPORT = {"action": "drift", "parallel": 1, "finished": "2026-12-01T03:41:07+00:00", "wallSeconds": 10.0,
          "tenants": [
              _tenant("contoso", 400, {"sync1@contoso.com": "never", "sync2@contoso.com": _day(14)}, result="drifted",
                      details=[f"sync user sync2@contoso.com: the password expires {_day(14)}, within 30 days, and "
                               "Novus stops when it does: ..."]),
              _tenant("fabrikam", 300, {"sync@fabrikam.com": _day(200)}),
              _tenant("northwind", 300, {"sync@northwind.com": "unknown"})]}


def test_the_reminder_rule_counts_a_password_as_a_secret():
    attention = needs_attention(REPORT, TODAY)
    assert [(a.stack, a.kind, a.days_left) for a in attention] == [("contoso", "secret ends", 14)]
    assert attention[0].text == "sync user sync2@contoso.com's password ends in 14 day(s)"
    assert should_post(REPORT, TODAY)  # 14 days is a reminder day, as for the client secret
    quiet = {**REPORT, "tenants": [_tenant("contoso", 400, {"sync@contoso.com": _day(13)})]}
    assert not should_post(quiet, TODAY) and needs_attention(quiet, TODAY)[0].days_left == 13


def test_the_page_shows_each_sync_users_password_expiry_beside_the_secret(browser, tmp_path):
    path = tmp_path / "fleet.html"
    path.write_text(render(REPORT, TODAY), encoding="utf-8")
    context = browser.new_context(viewport={"width": 1400, "height": 800}, offline=True)
    tab = context.new_page()
    tab.goto(path.as_uri())
    headings = [h.inner_text() for h in tab.query_selector_all("thead th")]
    assert headings.index("Sync user passwords expire") == headings.index("Days left") + 1
    row = tab.query_selector("tbody tr:has(th:text-is('contoso'))")
    cells = [p.inner_text() for p in row.query_selector_all("td.passwords p")]
    assert cells == ["sync1@contoso.com: never", f"sync2@contoso.com: {(TODAY + timedelta(days=14)).isoformat()} "
                     "(14 days, warning)"]
    warned = row.query_selector("p.password.warn")
    assert warned.get_attribute("data-user") == "sync2@contoso.com" and warned.is_visible()
    assert tab.query_selector("p[data-user='sync@fabrikam.com']").get_attribute("class") == "password"
    assert "unknown" in tab.inner_text("p[data-user='sync@northwind.com']")
    context.close()


def test_the_card_shows_a_sync_users_password_expiry(renderer):  # noqa: F811
    tab, draw, _ = renderer
    outcome = draw(card_of(REPORT))
    assert outcome == {"events": [], "validation": []}, outcome
    shown = tab.inner_text("#card")
    assert "sync user sync2@contoso.com's password ends in 14 day(s)" in shown
    assert tab.get_by_text("contoso", exact=True).is_visible()
