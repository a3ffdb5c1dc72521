"""What the Pulumi engine said during one tenant's run, read from the events the Automation API hands on.

A failing resource reaches the Automation API as a `diagnosticEvent` with severity `error` and the
resource's URN, followed by a `resOpFailedEvent`; the CLI itself then exits with nothing on stderr but
its exit code. The first error diagnostic is the cause a person needs ("AADSTS7000215: Invalid client
secret provided", a missing service principal), so a fleet report keeps it, one line, before the CLI's
own line. A mandatory policy's violation arrives as a `policyEvent` and counts as such an error too. The
post-deploy hook's warnings (a new client secret to enter in Novus) arrive as warning diagnostics.
"""

from __future__ import annotations

import re
import threading
from typing import Any

CAUSE_LENGTH = 300  # characters: long enough for a provider's message, short enough for a table cell
# The engine's diagnostics carry its colour directives, e.g. `<{%fg 1%}>error: <{%reset%}>`.
_COLOUR = re.compile(r"<\{%[^%]*%\}>")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Where in a provider's Go source the error was raised (`sdk-v2/provider2.go:520: `): noise to a reader.
_GO_SOURCE = re.compile(r"(?m)^\s*[\w./-]+\.go:\d+: ")
# What must never reach a report even if a provider echoes it: credentials in `key=value` or JSON
# form, bearer tokens, JWTs, and URLs' query strings (a Teams workflow URL's signature is one).
_SECRETS = (
    (re.compile(r"(?i)\b(client_secret|password|access_token|refresh_token|id_token|client_assertion|sig)=[^\s&\"',;()]+"),
     r"\1=[redacted]"),
    (re.compile(r'(?i)"(clientSecret|client_secret|secretText|password|access_token|refresh_token)"\s*:\s*"[^"]*"'),
     r'"\1": "[redacted]"'),
    (re.compile(r"(?i)\bBearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), "[redacted token]"),
    (re.compile(r"(https?://[^\s?#\"']+)\?[^\s\"']*"), r"\1?[redacted]"),
)
# The post-deploy hook (run inside `pulumi up`) says what an admin must do as a warning with this prefix.
POST_DEPLOY_PREFIX = "post-deploy: "


class EngineLog:
    """Collects one run's engine events: pass `on_event` to the Automation API's preview or up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.changes: dict[str, int] = {}
        self._errors: list[str] = []
        self.notices: list[str] = []

    def on_event(self, event: Any) -> None:
        with self._lock:
            if event.summary_event:
                self.changes.update({str(getattr(op, "value", op)): count
                                     for op, count in event.summary_event.resource_changes.items()})
            policy = event.policy_event
            if policy and policy.enforcement_level == "mandatory":  # refused by the policy pack
                label = " ".join(filter(None, [resource_label(policy.resource_urn),
                                               f"policy {policy.policy_name} ({policy.policy_pack_name})"]))
                self._errors.append(one_line(policy.message, label))
            diagnostic = event.diagnostic_event
            if diagnostic and diagnostic.severity == "error":
                self._errors.append(one_line(diagnostic.message, resource_label(diagnostic.urn)))
            elif diagnostic and diagnostic.severity == "warning":
                message = plain(diagnostic.message)
                if message.startswith(POST_DEPLOY_PREFIX):
                    self.notices.append(one_line(message.removeprefix(POST_DEPLOY_PREFIX), ""))

    def first_error(self) -> str | None:
        with self._lock:
            return self._errors[0] if self._errors else None


def resource_label(urn: str | None) -> str:
    """`azuread:index:ApplicationPassword (client-secret)` from the resource's URN, as the CLI names it;
    `urn:pulumi:<stack>::<project>::<parent type>$<type>::<name>`."""
    if not urn or not urn.startswith("urn:pulumi:") or urn.count("::") < 3:
        return ""
    _, _, types, name = urn.split("::", 3)
    return f"{types.rsplit('$', 1)[-1]} ({name})"


def plain(message: str) -> str:
    return _ANSI.sub("", _COLOUR.sub("", message)).strip()


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def one_line(message: str, label: str, length: int = CAUSE_LENGTH) -> str:
    """`label: message` on one line, secrets redacted, cut to `length` characters."""
    text = " ".join(redact(_GO_SOURCE.sub("", plain(message))).split())
    line = f"{label}: {text}" if label else text
    return line if len(line) <= length else line[:length - 1].rstrip() + "…"
