"""Sign-in rules that would stop the sync user's password sign-in, which cannot answer MFA: security
defaults, and Conditional Access policies that require MFA or block sign-in for it; for every sync user of
the collection, each finding naming its user.

A policy counts when it is `enabled` (not report-only), its users take in the sync user (All, the user,
or a group it is in) without excluding it (by ID or through a group), its applications take in an API
the sync user signs in to (All, Office365, or the API's app ID) and its client app types take in the
password sign-in, which is an OAuth 2.0 token request (`all` or `mobileAppsAndDesktopClients`; a
policy only for legacy clients, `exchangeActiveSync` or `other`, does not touch it). These are warnings
while the sync user does not exist yet (it may still be excluded before Novus needs it), errors when it
does: post-deploy's proof of sign-in would fail.
"""

from __future__ import annotations

from typing import Any

from presencesync.config import Settings
from presencesync.permissions import PROFILES
from presencesync.preflight_findings import Finding, Reads, groups_read, sync_users_of, user_read

PASSWORD_SIGN_IN_CLIENTS = frozenset({"all", "mobileAppsAndDesktopClients"})
EVERY_API = frozenset({"All", "Office365"})


def sign_in_rules(settings: Settings, reads: Reads) -> list[Finding]:
    """For every sync user of the collection: each finding names the user it would stop."""
    defaults = reads.body("security defaults")
    policies = reads.value("conditional access")  # None: said by the read
    apis = {api.app_id for api in PROFILES[settings.profile]}
    found = []
    for wanted in sync_users_of(settings):
        found += _rules_for(wanted.user_principal_name, reads, defaults, policies or [], apis)
    return found


def _rules_for(upn: str, reads: Reads, defaults: dict[str, Any] | None, policies: list[dict[str, Any]],
               apis: set[str]) -> list[Finding]:
    user = reads.body(user_read(upn))
    exists = user is not None
    when = "" if exists else f" (a warning while {upn} does not exist yet; once it does, the proof of sign-in fails)"
    found = []
    if defaults and defaults.get("isEnabled") is True:
        found.append(Finding(exists, "security defaults", f"security defaults are on, so {upn}'s password sign-in is "
                             "asked for MFA (AADSTS50076), which Novus cannot answer: an admin turns security "
                             "defaults off and protects the tenant with Conditional Access policies that exclude "
                             f"the sync user{when}"))
    groups = {str(g.get("id")) for g in reads.value(groups_read(upn)) or []} if exists else set()
    user_id = str(user.get("id")) if user else None
    for policy in policies:
        effect = _effect(policy)
        if effect and policy.get("state") == "enabled" and _takes_in(policy, user_id, groups) and \
                _covers(policy, apis):
            found.append(Finding(exists, "conditional access", f"policy '{policy.get('displayName')}' "
                                 f"({policy.get('id')}) {effect} for {upn}'s sign-in, which Novus cannot pass "
                                 f"({'AADSTS53003' if effect == 'blocks sign-in' else 'AADSTS50076'}): an admin "
                                 f"excludes the sync user {upn} from it (Users > Exclude){when}"))
    return found


def _effect(policy: dict[str, Any]) -> str | None:
    grant = policy.get("grantControls") or {}
    controls = {str(c).lower() for c in grant.get("builtInControls") or []}
    if "block" in controls:
        return "blocks sign-in"
    if "mfa" in controls or grant.get("authenticationStrength"):
        return "requires MFA"
    return None


def _takes_in(policy: dict[str, Any], user_id: str | None, groups: set[str]) -> bool:
    users = (policy.get("conditions") or {}).get("users") or {}
    if user_id is None:  # not created yet: only a policy for everyone is sure to take it in
        return "All" in (users.get("includeUsers") or [])
    included = "All" in (users.get("includeUsers") or []) or user_id in (users.get("includeUsers") or []) or \
        bool(groups & set(users.get("includeGroups") or []))
    excluded = user_id in (users.get("excludeUsers") or []) or bool(groups & set(users.get("excludeGroups") or []))
    return included and not excluded


def _covers(policy: dict[str, Any], apis: set[str]) -> bool:
    conditions = policy.get("conditions") or {}
    clients = set(conditions.get("clientAppTypes") or ["all"])
    applications = conditions.get("applications") or {}
    included, excluded = set(applications.get("includeApplications") or []), \
        set(applications.get("excludeApplications") or [])
    reached = [api for api in apis if (included & EVERY_API or api in included)
               and api not in excluded and "Office365" not in excluded]
    return bool(clients & PASSWORD_SIGN_IN_CLIENTS) and bool(reached)
