"""The Teams card, parsed and drawn by Microsoft's own Adaptive Cards renderer in headless Chromium.

The renderer is the `adaptivecards` npm package (the JavaScript library Teams' web and desktop
clients render cards with), given Teams' host config (`microsoft-teams-light.json` from Microsoft's
`adaptivecards-designer` package) and, as a Markdown-capable host does, `markdown-it` for TextBlocks:
`AdaptiveCard.applyMarkdown` (adaptivecards lib/card-elements.js) uses `window.markdownit` when present,
while a TextRun is always set as `innerText`. scripts/test.sh installs them (tests/adaptivecards).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from conftest import ROOT
from sample_reports import HOSTILE_NAME, HOSTILE_REASON, mixed_report

from presencesync.attention import needs_attention
from presencesync.teams_card import MAX_LINES, SIZE_LIMIT, message, size

MODULES = ROOT / ".cache" / "adaptivecards" / "node_modules"
SCREENSHOT = ROOT / "artifacts" / "teams-card.png"  # CI keeps artifacts/; docs/teams-card.png is a copy
TODAY = date(2026, 12, 1)
LINK = "https://github.com/partner/tenants/actions/runs/42"
# What a stack file name or a tenant's answer could try: a Markdown link and emphasis, HTML, a card
# date function, and a lookalike of our own link.
HOSTILE = ["[Open the run](https://evil.example/phish) **urgent** _now_", "<img src=x onerror=\"window.__pwned=3\">",
           "{{DATE(2017-02-14T06:08:39Z, SHORT)}} `code` # heading", HOSTILE_NAME]

RENDER = """([card, hostConfig]) => {
  const adaptive = new AdaptiveCards.AdaptiveCard();
  adaptive.hostConfig = new AdaptiveCards.HostConfig(hostConfig);
  const context = new AdaptiveCards.SerializationContext();
  adaptive.parse(card, context);
  const events = [];
  for (let i = 0; i < context.eventCount; i++) {
    const e = context.getEventAt(i);
    events.push(`${e.phase} ${e.event}: ${e.message}`);
  }
  const validation = adaptive.validateProperties().validationEvents.map(e => `${e.event}: ${e.message}`);
  const host = document.getElementById("card");
  host.replaceChildren(adaptive.render());
  return {events, validation};
}"""


@pytest.fixture
def renderer(browser, tmp_path):
    script = MODULES / "adaptivecards" / "dist" / "adaptivecards.min.js"
    if not script.exists():
        pytest.skip("the adaptivecards npm package is not installed (bash scripts/test.sh installs it): card test skipped")
    page = tmp_path / "teams.html"
    page.write_text('<!DOCTYPE html><html><body style="margin:0;background:#F6F6F6;font-family:\'Segoe UI\',sans-serif">'
                    '<div class="teams-frame" style="padding:16px"><div class="teams-inner-frame">'
                    '<div class="teams-botNameAndTime">Workflows 03:41</div><div id="card" class="teams-card"></div>'
                    '</div></div></body></html>')
    context = browser.new_context(viewport={"width": 820, "height": 900}, offline=True)
    tab = context.new_page()
    console: list[str] = []
    tab.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    tab.goto(page.as_uri())
    tab.add_style_tag(path=str(MODULES / "adaptivecards-designer" / "dist" / "containers" / "teams-container-light.css"))
    tab.add_script_tag(path=str(MODULES / "markdown-it" / "dist" / "markdown-it.min.js"))
    tab.add_script_tag(path=str(script))
    host_config = json.loads((MODULES / "adaptivecards-designer" / "lib" / "hostConfigs" /
                              "microsoft-teams-light.json").read_text())

    def render(card: dict[str, Any]) -> dict[str, list[str]]:
        return tab.evaluate(RENDER, [card, host_config])

    yield tab, render, console
    context.close()


def card_of(report: dict[str, Any]) -> dict[str, Any]:
    body = message(report, TODAY, LINK)
    return body["attachments"][0]["content"]


def realistic_report() -> dict[str, Any]:
    def t(stack: str, result: str, days: int, **extra: Any) -> dict[str, Any]:
        return {"stack": stack, "result": result, "changes": {}, "seconds": 4.2, "details": [],
                "clientSecretEndDate": f"{(TODAY + timedelta(days=days)).isoformat()}T00:00:00Z", **extra}

    tenants = [t(f"customer-{i:03d}", "ok", 200 + i) for i in range(294)]
    tenants += [
        t("contoso", "failed", 320, details=[
            "azuread:index:ApplicationPassword (client-secret): Adding password for application with object ID "
            "\"3f0c…\": unexpected status 401: AADSTS7000215: Invalid client secret provided.",
            "pulumi exited 1: no message"]),
        t("fabrikam", "drifted", 410, changes={"update": 1},
          details=["pulumi preview --refresh: the tenant differs from the stack"]),
        t("northwind", "drifted", 150, details=["client secret: a rotation is due since 2026-11-30T00:00:00Z: run "
                                                "pulumi up, then enter the new secret in Novus"]),
        t("adventure-works", "ok", 7),
        t("tailspin", "changes", 365, changes={"replace": 1}, notices=[
            "the client secret changed: enter the new one on the Novus page before 2027-01-29T00:00:00Z, when the "
            "one Novus has stops working"]),
        t("wingtip", "drifted", -2, details=["client secret: the one Novus should hold expires 2026-11-29T00:00:00Z, "
                                             "within 30 days: run pulumi up, then enter the new secret in Novus"]),
    ]
    return {"action": "drift", "parallel": 4, "finished": "2026-12-01T03:41:07+00:00", "wallSeconds": 900.0,
            "tenants": tenants}


def test_the_card_parses_and_shows_every_line_in_teams_renderer(renderer):
    tab, render, console = renderer
    report = realistic_report()
    outcome = render(card_of(report))
    assert outcome == {"events": [], "validation": []}, outcome  # no parse error or warning
    assert not [line for line in console if line.startswith(("error", "warning"))], console
    shown = tab.inner_text("#card")
    lines = needs_attention(report, TODAY)
    assert [a.stack for a in lines] == ["contoso", "northwind", "fabrikam", "wingtip", "tailspin", "adventure-works"]
    for attention in lines:  # each tenant line is drawn and visible, in order
        element = tab.get_by_text(attention.stack, exact=True)
        assert element.is_visible(), attention.stack
    positions = [shown.index(a.stack) for a in lines]
    assert positions == sorted(positions)
    assert "AADSTS7000215: Invalid client secret provided." in shown and "client secret ends in 7 day(s)" in shown
    assert "enter the new one on the Novus page before 2027-01-29" in shown
    assert "client secret expired 2 day(s) ago" in shown
    assert "presencesync: 6 tenant(s) need attention" in shown
    # The card's one action, drawn as a button with the link role (adaptivecards renders Action.OpenUrl so).
    assert tab.get_by_role("link", name="Open the run").is_visible()
    SCREENSHOT.parent.mkdir(exist_ok=True)
    tab.locator(".teams-inner-frame").screenshot(path=str(SCREENSHOT))


def test_hostile_names_and_reasons_stay_text(renderer):
    tab, render, _ = renderer
    report = mixed_report(12, TODAY)
    for index, text in enumerate(HOSTILE):
        report["tenants"][index * 3] = {**report["tenants"][index * 3], "stack": text, "result": "failed",
                                        "details": [text, HOSTILE_REASON]}
    outcome = render(card_of(report))
    assert outcome == {"events": [], "validation": []}, outcome
    shown = tab.inner_text("#card").replace("\u200b", "")  # the card breaks `{{` with a zero-width space
    for text in HOSTILE:
        assert text in shown, text  # shown as written, the date function not run
    card = tab.locator("#card")
    for tag in ("a", "strong", "em", "code", "img", "script", "h1"):
        assert card.locator(tag).count() == 0, tag  # no element made from a name or a reason
    assert [e.get_attribute("aria-label") for e in card.get_by_role("link").all()] == ["Open the run"]
    assert tab.evaluate("window.__pwned") is None
    # The check can fail: the same text in a TextBlock (which this host runs through Markdown) makes a link.
    render({"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": HOSTILE[0]}]})
    assert card.locator("a").count() == 1 and card.locator("strong").count() == 1


def test_300_tenants_stay_under_the_size_limit_with_20_lines_and_the_rest_counted(renderer):
    tab, render, _ = renderer
    report = mixed_report(300, TODAY)
    # The worst case: every tenant failed, with the longest names and reasons, in characters that UTF-8
    # takes four bytes for.
    for index, tenant in enumerate(report["tenants"]):
        tenant.update(result="failed", stack=f"{index:03d}" + "𝔗" * 120, details=["𝔈" * 400])
    body = message(report, TODAY, LINK)
    assert size(body) <= SIZE_LIMIT, size(body)
    card = body["attachments"][0]["content"]
    outcome = render(card)
    assert outcome == {"events": [], "validation": []}, outcome
    lines = [element for element in card["body"] if element["type"] == "RichTextBlock"][1:]
    assert 0 < len(lines) <= MAX_LINES
    assert f"and {300 - len(lines)} more" in tab.inner_text("#card")
    # A real fleet's card (short names, the report's own reasons) keeps all 20 lines.
    plain = message(mixed_report(300, TODAY), TODAY, LINK)
    assert size(plain) < SIZE_LIMIT / 2
    shown_lines = [e for e in plain["attachments"][0]["content"]["body"] if e["type"] == "RichTextBlock"][1:]
    assert len(shown_lines) == MAX_LINES

