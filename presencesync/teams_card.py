"""The Teams message for a fleet run: an Adaptive Card in the envelope that Workflows webhooks take.

Envelope: `{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
"content": <card>}]}`; card version 1.5, the highest Teams renders. A message may be about 28 KB, so the
card lists at most MAX_LINES tenants, each line cut to LINE_LENGTH characters, then "and N more".
Tenant names and reasons come from stack files and tenants' answers: they go into TextRun elements,
which Adaptive Cards never read as Markdown, so a name cannot make a link or bold text (nor a date
function: see `_run`). Only our own
text (counts, headings) is in TextBlocks. Nothing secret is in a report, so nothing secret is here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any
from urllib.parse import quote

from presencesync.attention import Attention, counts, needs_attention

CARD_VERSION = "1.5"
MAX_LINES = 20
LINE_LENGTH = 240
STACK_LENGTH = 100  # Pulumi's own limit on a stack name
SIZE_LIMIT = 28_000  # bytes of the whole message: Teams refuses larger ones ("request entity too large")
_COLOUR = {"failed": "Attention", "drifted": "Warning", "secret expired": "Attention", "secret ends": "Warning",
           "new secret": "Accent"}


def run_url(environ: Mapping[str, str]) -> str | None:
    """The CI run's page: GitHub Actions' or Azure DevOps' own variables, else none."""
    if all(environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")):
        return f"{environ['GITHUB_SERVER_URL']}/{environ['GITHUB_REPOSITORY']}/actions/runs/{environ['GITHUB_RUN_ID']}"
    if all(environ.get(k) for k in ("SYSTEM_COLLECTIONURI", "SYSTEM_TEAMPROJECT", "BUILD_BUILDID")):
        return (f"{environ['SYSTEM_COLLECTIONURI'].rstrip('/')}/{quote(environ['SYSTEM_TEAMPROJECT'])}"
                f"/_build/results?buildId={quote(environ['BUILD_BUILDID'])}")
    return None


def message(report: dict[str, Any], today: date, link: str | None) -> dict[str, Any]:
    """The whole webhook request body, under SIZE_LIMIT: fewer tenant lines if long names would pass it."""
    for lines in range(MAX_LINES, -1, -1):
        envelope = {"type": "message",
                    "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                                     "content": adaptive_card(report, today, link, lines)}]}
        if size(envelope) <= SIZE_LIMIT:
            break
    return envelope


def adaptive_card(report: dict[str, Any], today: date, link: str | None, lines: int = MAX_LINES) -> dict[str, Any]:
    attention = needs_attention(report, today)
    tally = counts(report)
    heading = (f"presencesync: {len(attention)} tenant(s) need attention" if attention
               else "presencesync: no tenant needs attention")
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": heading, "size": "Medium", "weight": "Bolder", "wrap": True},
        {"type": "RichTextBlock", "inlines": [_run(f"fleet {report.get('action', '?')}, finished "
                                                   f"{report.get('finished', '?')}, {len(report['tenants'])} "
                                                   f"tenant(s); secret dates as of {today.isoformat()}",
                                                   isSubtle=True)]},
        {"type": "FactSet", "facts": [{"title": result, "value": str(count)} for result, count in tally.items()]},
    ]
    body += [_line(a) for a in attention[:lines]]
    if len(attention) > lines:
        body.append({"type": "TextBlock", "text": f"and {len(attention) - lines} more", "wrap": True,
                     "isSubtle": True})
    card: dict[str, Any] = {"type": "AdaptiveCard", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "version": CARD_VERSION, "body": body, "msteams": {"width": "Full"}}
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the run", "url": link}]
    return card


def encode(payload: dict[str, Any]) -> bytes:
    """The request body as sent: UTF-8, not \\u escapes, which would make a non-Latin name six times longer."""
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def size(payload: dict[str, Any]) -> int:
    return len(encode(payload))


def _line(attention: Attention) -> dict[str, Any]:
    text = _cut(attention.text, LINE_LENGTH)
    return {"type": "RichTextBlock", "spacing": "Small", "inlines": [
        _run(_cut(attention.stack, STACK_LENGTH), weight="Bolder"), _run("  "),
        _run(attention.kind.upper(), weight="Bolder", color=_COLOUR[attention.kind]), _run(": " + text)]}


def _cut(text: str, length: int) -> str:
    return text if len(text) <= length else text[:length - 1] + "…"


def _run(text: str, **style: Any) -> dict[str, Any]:
    # Hosts replace `{{DATE(...)}}` and `{{TIME(...)}}` in any text, TextRuns too: a zero-width space
    # between the braces keeps such text as written, looking the same.
    return {"type": "TextRun", "text": text.replace("{{", "{\u200b{"), **style}
