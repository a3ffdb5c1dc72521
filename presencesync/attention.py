"""Which tenants of a fleet report need a person, worst first, and whether tonight's run should say so.

The rule has no state, so every nightly job decides alone: post when a tenant failed or drifted, when
a new client secret must be entered in Novus, or when a client secret (or a sync user's password) has
exactly 30, 14, 7, 3 or 1 days left, ends today or has expired. A quiet night says nothing, so a channel
is not trained to ignore it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from presencesync.rfc3339 import parse_rfc3339

REMINDER_DAYS = (30, 14, 7, 3, 1)
WARNING_DAYS = 30
# post-deploy --check reports a secret within 30 days of its end as drift with this text; that alone is
# no drift to post about every night: the reminder days above decide.
SECRET_ENDING = "client secret: the one Novus should hold expires"
_PASSWORD_ENDING = re.compile(r"sync user \S+: the password expire[sd] ")  # the same for a sync user's password
FAILED, DRIFTED, EXPIRED, ENDING, NEW_SECRET = "failed", "drifted", "secret expired", "secret ends", "new secret"
_RANK = {FAILED: 0, DRIFTED: 1, EXPIRED: 2, NEW_SECRET: 3, ENDING: 4}


@dataclass(frozen=True)
class Attention:
    """One tenant that needs a person: why (`kind`), and what to say, as plain text."""

    stack: str
    kind: str
    text: str
    days_left: int | None  # to the end of the secret Novus should hold, where known

    @property
    def rank(self) -> tuple[int, int, str]:
        return _RANK[self.kind], self.days_left if self.days_left is not None else 10**6, self.stack


def needs_attention(report: dict[str, Any], today: date) -> list[Attention]:
    found = [a for a in (_attention(t, today) for t in report["tenants"]) if a]
    return sorted(found, key=lambda a: a.rank)


def should_post(report: dict[str, Any], today: date) -> bool:
    return any(a.kind in (FAILED, DRIFTED, EXPIRED, NEW_SECRET) or a.days_left in REMINDER_DAYS or a.days_left == 0
               for a in needs_attention(report, today))


def counts(report: dict[str, Any]) -> dict[str, int]:
    results = ("failed", "drifted", "changes", "ok")
    return {result: sum(str(t.get("result")) == result for t in report["tenants"]) for result in results}


def secret_days_left(tenant: dict[str, Any], today: date) -> int | None:
    try:
        return (parse_rfc3339(str(tenant["clientSecretEndDate"])).date() - today).days
    except (KeyError, ValueError):
        return None


def _attention(tenant: dict[str, Any], today: date) -> Attention | None:
    stack, result = str(tenant.get("stack", "?")), str(tenant.get("result", "failed"))
    details = [str(d) for d in tenant.get("details", [])]
    notices = [str(n) for n in tenant.get("notices", [])]
    changes = {str(op): count for op, count in (tenant.get("changes") or {}).items()}
    days = secret_days_left(tenant, today)
    secret = _ending("client secret", days)
    # A sync user's password counts as the client secret does, with the same thresholds: the sooner of the two.
    user, user_days = soonest_password(tenant, today)
    if user_days is not None and user_days <= WARNING_DAYS:
        secret = _join(secret, _ending(f"sync user {user}'s password", user_days))
        days = user_days if days is None else min(days, user_days)
    real_drift = [d for d in details if not d.startswith(SECRET_ENDING) and not _PASSWORD_ENDING.match(d)]
    if result not in ("failed", "drifted", "changes", "ok"):
        result = "failed"
    what = "changes: " + ", ".join(f"{op} {count}" for op, count in changes.items()) if changes else ""
    if result == "failed":
        return Attention(stack, FAILED, _join(details[0] if details else "no reason given", what, secret), days)
    if result == "drifted" and (real_drift or changes):
        return Attention(stack, DRIFTED, _join(*real_drift[:1], what, secret), days)
    if notices:
        return Attention(stack, NEW_SECRET, _join(notices[0], secret), days)
    if secret:
        return Attention(stack, EXPIRED if days is not None and days < 0 else ENDING, secret, days)
    return None


def soonest_password(tenant: dict[str, Any], today: date) -> tuple[str | None, int | None]:
    """The sync user whose password expires first, and its days left (None: none expires, or none is known)."""
    dated = []
    for user, expires in (tenant.get("syncUserPasswordExpiry") or {}).items():
        try:
            dated.append(((parse_rfc3339(str(expires)).date() - today).days, str(user)))
        except ValueError:  # never, unknown
            continue
    return (min(dated)[1], min(dated)[0]) if dated else (None, None)


def _ending(what: str, days: int | None) -> str:
    return ("" if days is None or days > WARNING_DAYS else f"{what} expired {-days} day(s) ago" if days < 0 else
            f"{what} ends today" if days == 0 else f"{what} ends in {days} day(s)")


def _join(*parts: str) -> str:
    return "; ".join(part for part in parts if part)
