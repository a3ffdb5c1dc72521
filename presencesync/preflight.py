"""`python -m presencesync preflight`: what the customer's tenant will refuse, read before `pulumi up`
creates anything, with the deployer's own credentials (found as post-deploy finds them).

Everything is read in one `$batch` (a second only when the stack's outputs cannot name its application
and one of the same name exists); every sync user of the collection adds two reads, and past Graph's 20
requests the envelopes go out side by side, so the round trips stay the same. Nothing is written. Each
finding is one line: what was found, why it matters for Novus, what the customer's admin can do. A read
the deployer may not make is one warning line, never the end of the preflight. The rules live beside:
preflight_secrets.py (app management policies), preflight_rights.py (the deployer's rights),
preflight_sign_in.py (security defaults and Conditional Access).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from presencesync import graph as urls
from presencesync.clouds import endpoints_for
from presencesync.config import Settings
from presencesync.config_sync_users import SyncUser
from presencesync.credentials import graph_token_source, token_claims
from presencesync.graph import Call, Deadline, Graph
from presencesync.permissions import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE
from presencesync.preflight_findings import Finding, Reads, groups_read, sync_users_of, user_read
from presencesync.preflight_rights import Deployer, deployer_rights
from presencesync.preflight_secrets import password_restrictions
from presencesync.preflight_sign_in import sign_in_rules
from presencesync.presence_users import PRESENCE_USERS, presence_users_warning
from presencesync.rfc3339 import parse_rfc3339
from presencesync.stack_outputs import OutputsError
from presencesync.untrusted import excerpt, is_guid

READ_SECONDS = 60
# The services a Teams or Skype for Business Online licence plan brings (a user's assignedPlans).
PRESENCE_SERVICES = frozenset({"TeamspaceAPI", "MicrosoftCommunicationsOnline"})
USABLE_PLAN = frozenset({"Enabled", "Warning"})  # Warning: still usable, in the grace period


@dataclass(frozen=True)
class OwnApplication:
    """What the stack's outputs say about its application: `known` is False where they cannot be read."""

    known: bool
    object_id: str | None = None

    def __post_init__(self) -> None:
        if self.object_id is not None and not is_guid(self.object_id):  # it goes into Graph URLs
            raise OutputsError(f"the stack outputs' applicationObjectId '{excerpt(self.object_id)}' is not a GUID; "
                               "read it from pulumi stack output --json of this stack")


def deployer_of(token: str) -> Deployer:
    """Who the token belongs to. A delegated token carries `scp`; an app-only one does not (and from
    Graph it says `idtyp: app`)."""
    claims = token_claims(token) or {}
    app_only = claims.get("idtyp") == "app" or "scp" not in claims
    return Deployer(str(claims.get("oid", "")), app_only, frozenset(claims.get("roles") or []))


def run(settings: Settings, own: OwnApplication, *, now: datetime,
        env: Mapping[str, str] = os.environ) -> tuple[list[Finding], int]:
    """The findings, and how many Graph round trips it took."""
    endpoints = endpoints_for(settings.environment, env)
    source = graph_token_source(endpoints, env)
    token = source.token()
    return preflight(settings, Graph(endpoints.graph, lambda: token, Deadline(READ_SECONDS)),
                     deployer_of(token), own, now)


def preflight(settings: Settings, graph: Graph, deployer: Deployer, own: OwnApplication,
              now: datetime) -> tuple[list[Finding], int]:
    calls = _reads(settings, deployer, own)
    reads = Reads(calls, graph.read(list(calls.values())))
    round_trips = 1
    same_name = [a for a in reads.value("same name") or [] if a.get("id") != own.object_id]
    app: dict[str, Any] | None = reads.body("own application") if own.known else None
    policies = reads.value("own policies") if own.known else []
    if not own.known and len(same_name) == 1:  # maybe this stack's own: its policy decides its secrets
        app = same_name[0]
        extra = {"own policies": Call("GET", urls.app_management_policies(str(app["id"])),
                                      what="the application's app management policy")}
        # A refused read here is said once already, with the default policy's (the same permission).
        policies = Reads(extra, graph.read(list(extra.values()))).value("own policies")
        round_trips += 1
    created = parse_rfc3339(str(app["createdDateTime"])) if app and app.get("createdDateTime") else None
    findings = [
        *password_restrictions(settings, reads, policies or [], created, now),
        *deployer_rights(settings, deployer, reads),
        *_profile_needs(settings, reads, same_name, own),
        *sign_in_rules(settings, reads),
        *_sizing(settings, reads),
    ]
    return reads.findings + findings, round_trips


def _reads(settings: Settings, deployer: Deployer, own: OwnApplication) -> dict[str, Call]:
    calls = {
        "default policy": Call("GET", urls.DEFAULT_APP_MANAGEMENT_POLICY, what="the tenant's app management policy"),
        "security defaults": Call("GET", urls.SECURITY_DEFAULTS, what="security defaults"),
        # Graph throttles these to one request per second per tenant, all apps together, with no
        # Retry-After: read once, and say so when refused.
        "conditional access": Call("GET", urls.CONDITIONAL_ACCESS_POLICIES, what="Conditional Access policies",
                                   once=True),
        "same name": Call("GET", urls.applications_named(settings.display_name), what="applications of this name"),
        "presence users": PRESENCE_USERS,
    }
    for wanted in sync_users_of(settings):  # two reads each: more users, more $batch envelopes side by side
        upn = wanted.user_principal_name
        calls[user_read(upn)] = Call("GET", urls.user(upn, "id,accountEnabled,assignedPlans"),
                                     what=f"the sync user {upn}")
        calls[groups_read(upn)] = Call("GET", urls.memberships(upn), what=f"the groups of the sync user {upn}")
    if own.known and own.object_id:
        calls["own application"] = Call("GET", urls.application(own.object_id), what="the stack's application")
        calls["own policies"] = Call("GET", urls.app_management_policies(own.object_id),
                                     what="the application's app management policy")
    if settings.profile == "ucwa":
        calls["skype"] = Call("GET", urls.service_principal(SKYPE_FOR_BUSINESS_ONLINE, "id"),
                              what="the Skype for Business Online service principal")
    if deployer.app_only:
        calls["graph"] = Call("GET", urls.service_principal(MICROSOFT_GRAPH, "id,appRoles"),
                              what="Microsoft Graph's app roles")
        calls["deployer roles"] = Call("GET", urls.app_role_assignments(deployer.object_id),
                                       what="the deployer's app role assignments")
    else:
        calls["deployer roles"] = Call("GET", urls.MY_MEMBERSHIPS, what="the deployer's directory roles")
    return calls


def _sizing(settings: Settings, reads: Reads) -> list[Finding]:
    """The tenant's enabled users with Teams against watchedUsers (a warning: Novus may follow fewer)."""
    counted = (reads.body("presence users") or {}).get("@odata.count")
    if not isinstance(counted, int):
        return []
    line = presence_users_warning(counted, settings.profile, settings.watched_users, len(sync_users_of(settings)))
    return [Finding(False, "watchedUsers", line.removeprefix("presencesync:watchedUsers: "))] if line else []


def _profile_needs(settings: Settings, reads: Reads, same_name: list[dict[str, Any]],
                   own: OwnApplication) -> list[Finding]:
    found = []
    if settings.profile == "ucwa" and reads.status("skype") == 404:
        found.append(Finding(True, "ucwa", f"the tenant has no Skype for Business Online service principal "
                             f"({SKYPE_FOR_BUSINESS_ONLINE}), whose scopes the app requests for Novus: pulumi up "
                             f"would stop; add it with az ad sp create --id {SKYPE_FOR_BUSINESS_ONLINE}"))
    for wanted in sync_users_of(settings):
        found += _sync_user_needs(wanted, reads)
    for other in same_name:
        text = (f"another application (client ID {other.get('appId')}) is already named '{settings.display_name}': "
                "pulumi up refuses a duplicate name; set presencesync:displayName to another name, or take that "
                "application over with python -m presencesync adopt")
        if own.known:
            found.append(Finding(True, "display name", text))
        else:
            found.append(Finding(False, "display name", text.replace(
                "another application", "an application", 1) + " (the stack's outputs could not be read to tell "
                "whether it is this stack's own; if it is, nothing is wrong)"))
    return found


def _sync_user_needs(wanted: SyncUser, reads: Reads) -> list[Finding]:
    """One sync user of the collection: it exists (or will be created), is enabled and has Teams or Skype."""
    upn = wanted.user_principal_name
    user = reads.body(user_read(upn))
    if reads.status(user_read(upn)) == 404 and not wanted.create:
        return [Finding(True, "sync user", f"{upn} does not exist in this tenant, and Novus signs in as it: create it "
                        "(Office 365 E1 or higher), or set create: true for it in presencesync:syncUser or syncUsers")]
    if user is None:
        return []
    found = []
    if user.get("accountEnabled") is False:
        found.append(Finding(True, "sync user", f"{upn} is disabled, so Novus cannot sign in as it (AADSTS50057): "
                             "enable the account in the Entra admin center"))
    plans = {p.get("service") for p in user.get("assignedPlans") or [] if p.get("capabilityStatus") in USABLE_PLAN}
    if not PRESENCE_SERVICES & plans and not wanted.create:
        found.append(Finding(True, "sync user", f"{upn} has no Teams or Skype for Business licence (its assignedPlans "
                             "hold neither TeamspaceAPI nor MicrosoftCommunicationsOnline), so it has no presence for "
                             "Novus to sync: assign Office 365 E1 or higher"))
    return found
