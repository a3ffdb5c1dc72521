"""Posting a message to a Teams Workflows webhook: retries within a deadline, and no URL in any message.

The webhook URL carries its own credential (the `sig` query parameter), so it is read from an
environment variable and never printed, logged or put in an exception: every error here names the
variable and the HTTP status, and requests' own exceptions (whose text holds the URL) are not chained.
Teams throttles more than four posts a second to one webhook with 429; a 429 or 5xx answer is retried
with backoff, waiting what Retry-After says, until the deadline; any other 4xx is final.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from presencesync.errors import PresenceSyncError
from presencesync.teams_card import encode

DEFAULT_DEADLINE = 120.0  # seconds of retrying; PRESENCESYNC_TEAMS_DEADLINE overrides it
FIRST_WAIT, LONGEST_WAIT = 1.0, 30.0


class WebhookError(PresenceSyncError):
    """The webhook is not configured or did not take the message; the text never holds the URL."""


def webhook_url(name: str, environ: Mapping[str, str]) -> str:
    url = environ.get(name, "").strip()
    if not url:
        raise WebhookError(f"--teams-webhook-env {name}: the environment variable {name} is not set or empty; set it "
                           "to the Teams Workflows webhook URL (a CI secret)")
    if not url.startswith("https://"):
        raise WebhookError(f"--teams-webhook-env {name}: the value of {name} is not an https:// URL; copy the URL of "
                           "the workflow's 'When a Teams webhook request is received' trigger")
    return url


def deadline_seconds(environ: Mapping[str, str]) -> float:
    text = environ.get("PRESENCESYNC_TEAMS_DEADLINE", "")
    try:
        return float(text) if text else DEFAULT_DEADLINE
    except ValueError:
        raise WebhookError(f"PRESENCESYNC_TEAMS_DEADLINE={text!r} is not a number of seconds") from None


def post(url: str, name: str, payload: dict[str, Any], *, deadline: float,
         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> int:
    """POST `payload`; returns the number of tries. Raises WebhookError naming `name`, never `url`."""
    ends = clock() + deadline
    wait, tries = FIRST_WAIT, 0
    while True:
        tries += 1
        try:
            answer = requests.post(url, data=encode(payload), timeout=max(1.0, min(30.0, ends - clock())),
                                   headers={"Content-Type": "application/json; charset=utf-8"})
            status, reason, retry_after = answer.status_code, answer.reason, _retry_after(answer.headers)
        except requests.RequestException as error:  # its text holds the URL: only the kind is told
            status, reason, retry_after = 0, type(error).__name__, None
        if 200 <= status < 300:
            return tries
        if 400 <= status < 500 and status != 429:
            raise WebhookError(f"Teams webhook (${name}) answered {status} {reason}: the message was not posted"
                               f"{_fix(status)}")
        pause = max(wait, retry_after or 0.0)
        if clock() + pause > ends:
            what = f"{status} {reason}" if status else f"no answer ({reason})"
            raise WebhookError(f"Teams webhook (${name}): {what} after {tries} tries in {deadline:.0f} s; the message "
                               "was not posted")
        sleep(pause)
        wait = min(wait * 2, LONGEST_WAIT)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date (RFC 9110)."""
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _fix(status: int) -> str:
    if status in (401, 403, 404):
        return "; the workflow may have been turned off or deleted: create it again and update the secret"
    if status == 413:
        return "; the message is too large"
    return ""
