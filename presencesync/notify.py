"""Telling people after a fleet run: the Teams post and the GitHub issue, each failing on its own.

A failed delivery never changes the run's exit code (that says what the tenants did); it is one line
in the job log and a note on the fleet health page.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from presencesync import attention_issue, teams_card, teams_webhook
from presencesync.attention import should_post
from presencesync.errors import PresenceSyncError


def post_to_teams(report: dict[str, Any], today: date, webhook_env: str, *, always: bool,
                  say: Callable[[str], None], environ: Mapping[str, str] = os.environ) -> list[str]:
    """Post the card when the rules (or `always`) say so; returns the notes for the page."""
    if not always and not should_post(report, today):
        say("teams: nothing new needs a person tonight: not posted (--teams-always posts every run)")
        return []
    try:
        url = teams_webhook.webhook_url(webhook_env, environ)
        payload = teams_card.message(report, today, teams_card.run_url(environ))
        tries = teams_webhook.post(url, webhook_env, payload, deadline=teams_webhook.deadline_seconds(environ))
    except PresenceSyncError as error:
        say(f"error: teams: {error}")
        return [f"Teams notification failed: {error}"]
    say(f"teams: posted the fleet card ({teams_card.size(payload)} bytes, {tries} tr{'y' if tries == 1 else 'ies'})")
    return []


def keep_github_issue(report: dict[str, Any], today: date, summary: str, *, say: Callable[[str], None],
                      environ: Mapping[str, str] = os.environ) -> list[str]:
    try:
        done = attention_issue.sync_issue(report, today, summary, teams_card.run_url(environ))
    except (PresenceSyncError, ValueError) as error:
        say(f"error: github issue: {error}")
        return [f"GitHub issue not updated: {error}"]
    say(f"github issue: {done}")
    return []
