"""When a sync user's password expires, from what Microsoft Graph says of the user and its domain.

- user (`GET /me?$select=passwordPolicies,lastPasswordChangeDateTime`): `passwordPolicies` holds
  `DisablePasswordExpiration` when the password never expires; `lastPasswordChangeDateTime` is when it was last
  set, by anyone (Graph v1.0, user resource type).
- domain (`GET /domains?$select=id,passwordValidityPeriodInDays`): how long a password of a user in that
  domain is valid, "a default value of 90 days will be used if the property is not set"; 2147483647 is
  the value the tenant stores for "never expire" (Graph v1.0, domain resource type; Set-MsolPasswordPolicy).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from presencesync.rfc3339 import parse_rfc3339

NEVER = "never"
UNKNOWN = "unknown"
DEFAULT_VALIDITY_DAYS = 90
NEVER_EXPIRE_DAYS = 2147483647
WARNING = timedelta(days=30)  # the client secret's threshold


def domain_validity(domains: list[Mapping[str, Any]]) -> dict[str, int | None]:
    """Each domain's password validity in days (lower-case name), None for "never"."""
    days: dict[str, int | None] = {}
    for domain in domains:
        value = domain.get("passwordValidityPeriodInDays")
        value = DEFAULT_VALIDITY_DAYS if value is None else int(value)
        days[str(domain.get("id", "")).lower()] = None if value >= NEVER_EXPIRE_DAYS else value
    return days


def expiry(upn: str, me: Mapping[str, Any], validity: Mapping[str, int | None] | None) -> str:
    """The date (RFC 3339) the user's password expires, "never", or "unknown" (the tenant's policy unread)."""
    if "DisablePasswordExpiration" in str(me.get("passwordPolicies") or ""):
        return NEVER
    changed = me.get("lastPasswordChangeDateTime")
    domain = upn.rpartition("@")[2].lower()
    if validity is None or not isinstance(changed, str):
        return UNKNOWN
    days = validity.get(domain, DEFAULT_VALIDITY_DAYS)
    if days is None:
        return NEVER
    return (parse_rfc3339(changed) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def expiry_drift(upn: str, expires: str, now: datetime) -> str | None:
    """A line when the password expires within the client secret's warning period, or has expired."""
    if expires in (NEVER, UNKNOWN) or parse_rfc3339(expires) - now >= WARNING:
        return None
    when = "expired" if parse_rfc3339(expires) <= now else "expires"
    return (f"sync user {upn}: the password {when} {expires}, within 30 days, and Novus stops when it does: set it "
            "never to expire (passwordPolicies DisablePasswordExpiration), or change it as the README says (a second "
            "sync user first) and enter the new one in Novus")


def changed_drift(upn: str, changed: str | None) -> str:
    when = f" on {changed}" if changed else ""
    return (f"sync user {upn}: the customer changed the sync user's password{when}: Novus holds the old one; set "
            "the new one in the stack (syncUserPassword or syncUserPasswords) and on the Novus page, or reset it to "
            "the stack's")
