"""The nightly drift run tells people in both pipelines: Teams on GitHub and Azure DevOps, the issue on GitHub.

GitHub Actions: a job's `permissions` replace the workflow's, so `issues: write` on the page job alone
leaves every other job without it; `secrets.X` of a secret that is not set is empty (GitHub docs,
"Using secrets in GitHub Actions"). Azure DevOps: secret variables are not passed to scripts as
environment variables unless mapped in `env` ("Set secret variables"), and a macro `$(X)` of a variable
that is not defined stays as the literal text ("Define variables", macro syntax). The page job's
script is run here as the runner would, with stand-ins on PATH, for each case.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from conftest import ROOT
from fake_teams import SIG, FakeTeams

STANDIN = ROOT / "tests" / "standin"


def page_job() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / ".github" / "workflows" / "drift.yml").read_text())
    assert "issues" not in document["permissions"]  # the workflow's own grant stays read-only
    return document["jobs"]["page"]


def ado_page_step(stage: str = "drift") -> dict[str, Any]:
    """The stage's page job runs the shared page template; its report step is the one that posts. The step's
    `env` is returned as the template expands it for the stage's `action` (conditional insertion: a key
    `${{ if ne(parameters.action, 'X') }}` inserts its mapping unless action is X; Azure Pipelines docs,
    "Template expressions", conditional insertion)."""
    document = yaml.safe_load((ROOT / "azure-pipelines.yml").read_text())
    found = next(s for s in document["stages"] if s["stage"] == stage)
    job = next(j for j in found["jobs"] if j.get("job") == "page")
    [template] = [s for s in job["steps"] if "template" in s]
    assert template["template"] == ".azure-pipelines/page-steps.yml"
    action = template["parameters"]["action"]
    steps = yaml.safe_load((ROOT / ".azure-pipelines" / "page-steps.yml").read_text())["steps"]
    step = dict(next(s for s in steps if "fleet report" in s.get("bash", "")))
    env: dict[str, str] = {}
    for key, value in step["env"].items():
        if (condition := re.fullmatch(r"\$\{\{ if ne\(parameters\.action, '(\w+)'\) \}\}", key)):
            env.update(value if action != condition.group(1) else {})
        else:
            assert not key.startswith("${{"), f"an expression this test does not expand: {key}"
            env[key] = value
    step["env"] = env
    return step


def failing_reports(reports: Path) -> None:
    reports.mkdir(parents=True)
    (reports / "fleet-drift-cust-a.json").write_text(json.dumps({
        "action": "drift", "parallel": 1, "finished": "2026-12-06T03:00:00+00:00", "wallSeconds": 5.0,
        "tenants": [{"stack": "cust-a", "result": "failed", "changes": {}, "seconds": 5.0,
                     "details": ["pulumi exited 1: error: boom"]}]}))


def run_script(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A `run:`/`bash:` script as the runner runs it (bash -e), `python` being the project's."""
    shim = cwd / "bin"
    if not shim.exists():
        shim.mkdir()
        (shim / "python").symlink_to(sys.executable)
        (cwd / ".venv").symlink_to(sys.prefix)  # the jobs call the project's .venv/bin/python
        (cwd / "presencesync").symlink_to(ROOT / "presencesync")
    path = f"{shim}{os.pathsep}{STANDIN}{os.pathsep}/usr/bin{os.pathsep}/bin"
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, capture_output=True, text=True,
                          env={"PATH": path, "FAKE_GH_LOG": str(cwd / "gh.jsonl"),
                               "FAKE_GH_STATE": str(cwd / "gh.json"), **env}, timeout=120, check=False)


def test_github_page_job_posts_to_teams_and_keeps_the_issue(tmp_path):
    job = page_job()
    assert job["permissions"] == {"contents": "read", "issues": "write"}
    step = next(s for s in job["steps"] if "fleet report" in s.get("run", ""))
    assert step["env"] == {"GH_TOKEN": "${{ github.token }}",
                           "PRESENCESYNC_TEAMS_WEBHOOK": "${{ secrets.PRESENCESYNC_TEAMS_WEBHOOK }}"}
    failing_reports(tmp_path / "reports")
    summary = tmp_path / "summary.md"
    teams = FakeTeams(tmp_path)
    try:
        env = {"GH_TOKEN": "ghs_x", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_SERVER_URL": "https://github.com",
               "GITHUB_REPOSITORY": "partner/tenants", "GITHUB_RUN_ID": "9", "REQUESTS_CA_BUNDLE": str(teams.ca_path)}
        done = run_script(step["run"], tmp_path, {**env, "PRESENCESYNC_TEAMS_WEBHOOK": teams.url})
        assert done.returncode == 0, done.stderr
        assert len(teams.requests) == 1 and "teams: posted" in done.stderr
        assert "github issue: opened" in done.stderr and "| cust-a | FAILED |" in summary.read_text()
        assert SIG not in done.stdout + done.stderr
        # Without the repository secret (GitHub gives an empty value): no post, no error; the issue still kept.
        done = run_script(step["run"], tmp_path, {**env, "PRESENCESYNC_TEAMS_WEBHOOK": ""})
        assert done.returncode == 0, done.stderr
        assert len(teams.requests) == 1 and "teams" not in done.stderr and "github issue: updated issue #1" in done.stderr
    finally:
        teams.close()


def test_azure_devops_page_step_maps_the_secret_and_ignores_an_undefined_one(tmp_path):
    step = ado_page_step()
    assert step["env"] == {"PRESENCESYNC_TEAMS_WEBHOOK": "$(PRESENCESYNC_TEAMS_WEBHOOK)",
                           "REPORTS": "$(Pipeline.Workspace)/reports"}
    failing_reports(tmp_path / "ws" / "reports" / "fleet-drift-cust-a")  # DownloadPipelineArtifact's layout
    script = step["bash"]
    teams = FakeTeams(tmp_path)
    try:
        ado = {"REPORTS": str(tmp_path / "ws" / "reports"),  # the agent expands the env mapping's macro
               "SYSTEM_COLLECTIONURI": "https://dev.azure.com/partner/", "SYSTEM_TEAMPROJECT": "Tenants",
               "BUILD_BUILDID": "77", "REQUESTS_CA_BUNDLE": str(teams.ca_path)}
        done = run_script(script, tmp_path, {**ado, "PRESENCESYNC_TEAMS_WEBHOOK": teams.url})
        assert done.returncode == 0, done.stderr
        (request,) = teams.requests
        assert request["body"]["attachments"][0]["content"]["actions"][0]["url"] == (
            "https://dev.azure.com/partner/Tenants/_build/results?buildId=77")
        # A group without the variable: the macro stays as text; nothing is posted and nothing fails.
        done = run_script(script, tmp_path, {**ado, "PRESENCESYNC_TEAMS_WEBHOOK": "$(PRESENCESYNC_TEAMS_WEBHOOK)"})
        assert done.returncode == 0 and len(teams.requests) == 1 and "error" not in done.stderr
    finally:
        teams.close()


def test_azure_devops_pull_request_page_job_gets_no_teams_webhook(tmp_path):
    """The preview stage runs a pull request's own code (its page job too, once the stage's checks pass: the
    approval on the read-only preview connection). That approval is for a preview; the webhook URL, a
    credential that posts to the team's channel, is not needed there (GitHub's preview workflow has none)."""
    step = ado_page_step("preview")
    assert "PRESENCESYNC_TEAMS_WEBHOOK" not in step["env"]
    failing_reports(tmp_path / "ws" / "reports" / "fleet-preview-cust-a")
    done = run_script(step["bash"], tmp_path, {"REPORTS": str(tmp_path / "ws" / "reports")})
    assert done.returncode == 0, done.stderr
