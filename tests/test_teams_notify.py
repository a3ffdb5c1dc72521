"""Posting the fleet card to a Teams Workflows webhook: the envelope, when to post, delivery, no URL anywhere.

Against a loopback HTTPS receiver (tests/fake_teams.py). The envelope and limits are Microsoft's:
a Workflows webhook takes `{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "content": <Adaptive Card>}]}` (Teams docs, "Create
incoming webhooks with Workflows for Microsoft Teams"; "Send Adaptive Cards using an Incoming
Webhook"); a message is at most 28 KB and more than four requests a second get 429 (Teams docs,
"Create an Incoming Webhook", notes on message size and rate limiting).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import run
from fake_teams import SIG, FakeTeams

from presencesync import notify
from presencesync.postdeploy import _secret_drift
from presencesync.stack_outputs import Deployed

TODAY = datetime.now(UTC).date()


@pytest.fixture
def teams(tmp_path: Path):
    receiver = FakeTeams(tmp_path)
    yield receiver
    receiver.close()


def tenant(stack: str, result: str = "ok", days: int = 400, **extra) -> dict:
    return {"stack": stack, "result": result, "changes": {}, "seconds": 3.0, "details": [],
            "clientSecretEndDate": f"{(TODAY + timedelta(days=days)).isoformat()}T00:00:00Z", **extra}


def ending(stack: str, days: int) -> dict:
    """A tenant whose secret ends in `days`, drifted as post-deploy --check says (in its own words: under 30
    days it reports the secret as drift)."""
    end = f"{(TODAY + timedelta(days=days)).isoformat()}T00:00:00Z"
    details = _secret_drift(Deployed({}, "t", "a", "s", end, "u"), datetime.combine(TODAY, datetime.min.time(), UTC),
                            None)
    assert bool(details) == (days < 30)
    return tenant(stack, "drifted" if details else "ok", days, details=details)


def report(*tenants: dict) -> dict:
    return {"action": "drift", "parallel": 4, "finished": f"{TODAY.isoformat()}T03:41:07+00:00", "wallSeconds": 60.0,
            "tenants": list(tenants)}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "fleet-drift.json"
    path.write_text(json.dumps(data))
    return path


def post(teams: FakeTeams, data: dict, monkeypatch, always: bool = False) -> list[str]:
    for key, value in teams.env().items():
        monkeypatch.setenv(key, value)
    lines: list[str] = []
    notify.post_to_teams(data, TODAY, "PRESENCESYNC_TEAMS_WEBHOOK", always=always, say=lines.append)
    return lines


def test_a_quiet_night_posts_nothing_and_each_reminder_day_posts(teams, monkeypatch):
    quiet_days = (400, 31, 29, 20, 15, 8, 2)
    for days in quiet_days:
        lines = post(teams, report(tenant("a"), ending("b", days) if days <= 30 else tenant("b", days=days)),
                     monkeypatch)
        assert teams.requests == [], days
        assert lines == ["teams: nothing new needs a person tonight: not posted (--teams-always posts every run)"]
    for days in (30, 14, 7, 3, 1, 0, -1, -90):  # the reminder days, and every day once expired
        post(teams, report(tenant("a"), ending("b", days)), monkeypatch)
        assert len(teams.requests) == 1, days
        text = json.dumps(teams.requests.pop()["body"])
        assert ("expired" if days < 0 else "ends today" if days == 0 else f"ends in {days} day(s)") in text
    post(teams, report(tenant("a"), tenant("b", "drifted", changes={"update": 1},
                                              details=["pulumi preview --refresh: the tenant differs from the stack"])),
         monkeypatch)
    post(teams, report(tenant("a"), tenant("b", "failed", details=["pulumi exited 1: error: boom"])), monkeypatch)
    post(teams, report(tenant("a"), tenant("b", notices=["the client secret changed: enter the new one on the Novus "
                                                          "page before 2027-03-03T00:00:00Z"])), monkeypatch)
    assert len(teams.requests) == 3
    post(teams, report(tenant("a"), tenant("b")), monkeypatch, always=True)  # --teams-always
    assert len(teams.requests) == 4


def test_fleet_report_posts_the_card_in_the_workflows_envelope(teams, tmp_path):
    data = report(tenant("cust-ok"), tenant("cust-failed", "failed", details=[
        "azuread:index:ApplicationPassword (client-secret): AADSTS7000215: Invalid client secret provided.",
        "pulumi exited 1: no message"]),
        tenant("cust-drifted", "drifted", changes={"update": 1},
               details=["pulumi preview --refresh: the tenant differs from the stack"]))
    page = tmp_path / "page.html"
    done = run("fleet", "report", str(write(tmp_path, data)), "--html", str(page), "--teams-webhook-env",
               "PRESENCESYNC_TEAMS_WEBHOOK", env={**teams.env(), "GITHUB_SERVER_URL": "https://github.com",
                                                   "GITHUB_REPOSITORY": "partner/tenants", "GITHUB_RUN_ID": "42"})
    assert done.returncode == 0, done.stderr
    (request,) = teams.requests
    assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert SIG in request["path"]  # it went to the URL from the variable
    body = request["body"]
    assert body["type"] == "message" and len(body["attachments"]) == 1
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open the run",
                                "url": "https://github.com/partner/tenants/actions/runs/42"}]
    text = json.dumps(card)
    assert text.index("cust-failed") < text.index("cust-drifted") and "cust-ok" not in text.split('"facts"')[1]
    assert "AADSTS7000215: Invalid client secret provided." in text and "update 1" in text
    assert "teams: posted the fleet card" in done.stderr
    assert SIG not in done.stdout + done.stderr + page.read_text()


def test_azure_devops_run_link():
    from presencesync.teams_card import run_url

    assert run_url({"SYSTEM_COLLECTIONURI": "https://dev.azure.com/partner/", "SYSTEM_TEAMPROJECT": "Tenant Ops",
                    "BUILD_BUILDID": "1234"}) == "https://dev.azure.com/partner/Tenant%20Ops/_build/results?buildId=1234"
    assert run_url({}) is None


def failing_report(tmp_path: Path) -> Path:
    return write(tmp_path, report(tenant("cust-failed", "failed", details=["pulumi exited 1: error: boom"])))


def test_throttled_then_posted_honouring_retry_after(teams, tmp_path):
    teams.script = [(429, {"Retry-After": "2"})]
    started = time.monotonic()
    done = run("fleet", "report", str(failing_report(tmp_path)), "--html", str(tmp_path / "p.html"),
               "--teams-webhook-env", "PRESENCESYNC_TEAMS_WEBHOOK", env=teams.env())
    assert done.returncode == 0, done.stderr
    assert len(teams.requests) == 2 and time.monotonic() - started >= 2.0
    assert "2 tries" in done.stderr and SIG not in done.stdout + done.stderr


def test_server_errors_until_the_deadline_are_a_line_and_a_page_note(teams, tmp_path):
    teams.script = [(500, {})] * 50
    page = tmp_path / "p.html"
    done = run("fleet", "report", str(failing_report(tmp_path)), "--html", str(page), "--teams-webhook-env",
               "PRESENCESYNC_TEAMS_WEBHOOK", env={**teams.env(), "PRESENCESYNC_TEAMS_DEADLINE": "5"})
    assert done.returncode == 0, done.stderr  # the run's own exit code, not the delivery's
    tries = len(teams.requests)
    assert 2 <= tries <= 3  # at 0, 1 and 3 s (waits of 1 s, then 2 s); the next wait, 4 s, passes the deadline
    line = next(line for line in done.stderr.splitlines() if line.startswith("error: teams:"))
    assert f"($PRESENCESYNC_TEAMS_WEBHOOK): 500 Internal Server Error after {tries} tries in 5 s" in line
    assert "not posted" in line
    assert "Teams notification failed" in page.read_text() and "500 Internal Server Error" in page.read_text()
    assert SIG not in done.stdout + done.stderr + page.read_text() and "127.0.0.1" not in done.stderr


def test_a_bad_request_is_one_line_naming_the_status(teams, tmp_path):
    teams.script = [(400, {})]
    done = run("fleet", "report", str(failing_report(tmp_path)), "--html", str(tmp_path / "p.html"),
               "--teams-webhook-env", "PRESENCESYNC_TEAMS_WEBHOOK", env=teams.env())
    assert done.returncode == 0 and len(teams.requests) == 1  # a 4xx is final
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")] == [
        "error: teams: Teams webhook ($PRESENCESYNC_TEAMS_WEBHOOK) answered 400 Bad Request: the message was not posted"]
    assert "Traceback" not in done.stderr and SIG not in done.stdout + done.stderr


def test_no_answer_at_all_names_no_url(tmp_path):
    url = f"https://127.0.0.1:9/workflows/x/triggers/manual/paths/invoke?sig={SIG}"  # nothing listens on port 9
    done = run("fleet", "report", str(failing_report(tmp_path)), "--html", str(tmp_path / "p.html"),
               "--teams-webhook-env", "HOOK", env={"HOOK": url, "PRESENCESYNC_TEAMS_DEADLINE": "1"})
    assert done.returncode == 0
    assert "error: teams: Teams webhook ($HOOK): no answer (ConnectionError)" in done.stderr
    assert SIG not in done.stdout + done.stderr and "127.0.0.1" not in done.stderr


def test_an_unset_or_odd_webhook_variable_is_bad_input(tmp_path):
    for env, why in (({}, "the environment variable HOOK is not set or empty"),
                     ({"HOOK": "http://example.invalid/x?sig=abc"}, "the value of HOOK is not an https:// URL")):
        done = run("fleet", "report", str(failing_report(tmp_path)), "--html", str(tmp_path / "p.html"),
                   "--teams-webhook-env", "HOOK", env=env)
        assert done.returncode == 1 and done.stderr.startswith(f"error: --teams-webhook-env HOOK: {why}")
        assert "sig=abc" not in done.stderr and not (tmp_path / "p.html").exists()
