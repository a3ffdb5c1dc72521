"""The GitHub issue the nightly drift run keeps, through `fleet report --github-issue` and a stand-in `gh`
(tests/standin/gh) that records its calls: opened, updated, closed, and left alone when all is well."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import ROOT, run

from presencesync.attention_issue import LABEL, TITLE

STANDIN = ROOT / "tests" / "standin"
TODAY = datetime.now(UTC).date()


def tenant(stack: str, result: str = "ok", **extra) -> dict:
    end = f"{(TODAY + timedelta(days=300)).isoformat()}T00:00:00Z"
    return {"stack": stack, "result": result, "changes": {}, "seconds": 2.0, "details": [],
            "clientSecretEndDate": end, **extra}


def night(tmp_path: Path, *tenants: dict, token: bool = True):
    """One nightly page job: fleet report with --github-issue; returns the run, gh's calls and the issues."""
    report = tmp_path / "fleet-drift.json"
    report.write_text(json.dumps({"action": "drift", "parallel": 4, "finished": f"{TODAY}T03:00:00+00:00",
                                  "wallSeconds": 9.0, "tenants": list(tenants)}))
    log = tmp_path / "gh.jsonl"
    log.unlink(missing_ok=True)
    env = {"PATH": f"{STANDIN}{os.pathsep}{os.path.dirname(sys.executable)}", "FAKE_GH_LOG": str(log),
           "FAKE_GH_STATE": str(tmp_path / "gh-state.json"), "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_REPOSITORY": "partner/tenants", "GITHUB_RUN_ID": "7"}
    if token:
        env["GH_TOKEN"] = "ghs_job-token-value"
    done = run("fleet", "report", str(report), "--html", str(tmp_path / "page.html"), "--github-issue", env=env)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    state = tmp_path / "gh-state.json"
    issues = json.loads(state.read_text())["issues"] if state.exists() else []
    return done, calls, issues


def test_opened_updated_then_closed_and_nothing_when_all_is_well(tmp_path):
    # All well and no issue open: only the lookup, nothing written.
    done, calls, issues = night(tmp_path, tenant("cust-a"), tenant("cust-b"))
    assert done.returncode == 0, done.stderr
    assert [c["argv"][:2] for c in calls] == [["issue", "list"]]
    assert calls[0]["argv"] == ["issue", "list", "--label", LABEL, "--state", "open", "--json", "number,title",
                                "--limit", "20"]
    assert issues == [] and "github issue: no tenant needs attention and no issue is open" in done.stderr
    # A tenant fails: the issue is opened, labelled, with the summary table and the run's link.
    failed = tenant("cust-b", "failed", details=["azuread:index:Application (app): 403 Forbidden | [x](y)"])
    done, calls, issues = night(tmp_path, tenant("cust-a"), failed)
    assert done.returncode == 0, done.stderr
    assert [c["argv"][:2] for c in calls] == [["issue", "list"], ["label", "create"], ["issue", "create"]]
    assert calls[2]["argv"] == ["issue", "create", "--title", TITLE, "--label", LABEL, "--body-file", "-"]
    (issue,) = issues
    assert issue["state"] == "open" and issue["title"] == "presencesync: tenants that need attention"
    body = issue["body"]
    assert "https://github.com/partner/tenants/actions/runs/7" in body
    assert "| tenant | result | client secret ends | days left | reason |" in body  # the run summary's table
    assert "| cust-b | FAILED |" in body and "403 Forbidden &#124; &#91;x&#93;(y)" in body  # escaped as text
    assert "github issue: opened https://github.com/partner/tenants/issues/1" in done.stderr
    # The next night another tenant drifts too: the same issue's body is replaced, no second issue.
    drifted = tenant("cust-a", "drifted", changes={"update": 1},
                     details=["pulumi preview --refresh: the tenant differs from the stack"])
    done, calls, issues = night(tmp_path, drifted, failed)
    assert [c["argv"] for c in calls][1] == ["issue", "edit", "1", "--body-file", "-"]
    assert len(issues) == 1 and "| cust-a | DRIFTED |" in issues[0]["body"]
    assert "github issue: updated issue #1: 2 tenant(s) need attention" in done.stderr
    # A new secret to enter in Novus keeps it open, and says so in the table.
    notice = tenant("cust-a", notices=["the client secret changed: enter the new one on the Novus page before 2027-03-03"])
    done, calls, issues = night(tmp_path, notice, tenant("cust-b"))
    assert [c["argv"][:2] for c in calls] == [["issue", "list"], ["issue", "edit"]]
    assert "| cust-a | OK |" in issues[0]["body"] and "Action: the client secret changed" in issues[0]["body"]
    # All well again: closed with a comment.
    done, calls, issues = night(tmp_path, tenant("cust-a"), tenant("cust-b"))
    assert [c["argv"][:3] for c in calls] == [["issue", "list", "--label"], ["issue", "close", "1"]]
    assert issues[0]["state"] == "closed" and issues[0]["comments"][0].startswith(f"All tenants are well as of {TODAY}")
    # And the night after, nothing again.
    done, calls, issues = night(tmp_path, tenant("cust-a"), tenant("cust-b"))
    assert [c["argv"][:2] for c in calls] == [["issue", "list"]] and issues[0]["state"] == "closed"
    # The token never reaches the log.
    assert "ghs_job-token-value" not in done.stdout + done.stderr


def test_a_failing_gh_is_a_line_and_a_page_note_not_the_exit_code(tmp_path):
    done, _, _ = night(tmp_path, tenant("cust-a", "failed", details=["boom"]), token=False)
    assert done.returncode == 0
    assert ("error: github issue: gh issue list failed: gh: To use GitHub CLI in a GitHub Actions workflow, set the "
            "GH_TOKEN environment variable.") in done.stderr
    assert "GitHub issue not updated" in (tmp_path / "page.html").read_text()
