"""One GitHub issue that lists the tenants needing a person, kept by the nightly drift run with the `gh` CLI.

Found by its label, not by a number kept anywhere: opened when something needs a person, its body
replaced each night with the run's summary table, closed with a comment when all is well again. `gh`
signs in with the job's GITHUB_TOKEN (GH_TOKEN) and finds the repository from GH_REPO or the checkout.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import date
from typing import Any

from presencesync.attention import needs_attention
from presencesync.errors import PresenceSyncError

TITLE = "presencesync: tenants that need attention"
LABEL = "presencesync-attention"
BODY_LIMIT = 65_000  # characters; GitHub refuses an issue body over 65,536
Runner = Callable[[list[str], str | None], str]


class IssueError(PresenceSyncError):
    """`gh` failed; the message names the command and gh's own line."""


def run_gh(args: list[str], stdin: str | None = None) -> str:
    try:
        done = subprocess.run(["gh", *args], input=stdin, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise IssueError("the GitHub CLI (gh) is not installed; GitHub-hosted runners have it") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise IssueError(f"gh {' '.join(args[:2])} failed: {reason}")
    return done.stdout


def sync_issue(report: dict[str, Any], today: date, summary: str, link: str | None, gh: Runner = run_gh) -> str:
    """Open, update or close the issue as `report` says; returns what was done, one line."""
    listed = json.loads(gh(["issue", "list", "--label", LABEL, "--state", "open", "--json", "number,title",
                            "--limit", "20"], None) or "[]")
    open_issue = next((int(i["number"]) for i in listed if i.get("title") == TITLE), None)
    attention = needs_attention(report, today)
    if not attention:
        if open_issue is None:
            return "no tenant needs attention and no issue is open: nothing to do"
        gh(["issue", "close", str(open_issue), "--comment",
            f"All tenants are well as of {today.isoformat()}{f' ({link})' if link else ''}: closing."], None)
        return f"closed issue #{open_issue}: all tenants are well"
    body = _body(summary, len(attention), link)
    if open_issue is None:
        gh(["label", "create", LABEL, "--color", "B60205", "--force",
            "--description", "presencesync: tenants that need a person"], None)
        url = gh(["issue", "create", "--title", TITLE, "--label", LABEL, "--body-file", "-"], body).strip()
        return f"opened {url or 'the issue'}: {len(attention)} tenant(s) need attention"
    gh(["issue", "edit", str(open_issue), "--body-file", "-"], body)
    return f"updated issue #{open_issue}: {len(attention)} tenant(s) need attention"


def _body(summary: str, count: int, link: str | None) -> str:
    head = (f"{count} tenant(s) need a person. This issue is kept by the nightly drift run: its body is replaced "
            "every night and it is closed when all is well.")
    head += f" Last run: {link}\n\n" if link else "\n\n"
    body = head + summary
    if len(body) <= BODY_LIMIT:
        return body
    cut = body[:BODY_LIMIT].rsplit("\n", 1)[0]
    return cut + "\n\n(more rows than an issue holds: see the run's summary and the fleet health page)\n"
