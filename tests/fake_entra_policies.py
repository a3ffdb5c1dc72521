"""What Microsoft Graph v1.0 answers about a tenant's policies and memberships, for the preflight; and the
refusal `addPassword` gives when an app management policy forbids a secret. fake_entra.py routes here
the Graph calls its own routes do not serve.

Modelled on Microsoft's Graph documentation (microsoftgraph/microsoft-graph-docs-contrib, api-reference/v1.0):
- `tenantappmanagementpolicy-get.md` (GET /policies/defaultAppManagementPolicy: id 00000000-..., isEnabled,
  applicationRestrictions.passwordCredentials) and `resources/passwordcredentialconfiguration.md`
  (restrictionType, state, maxLifetime, restrictForAppsCreatedAfterDateTime: null applies to every app);
  `resources/appmanagementpolicy.md` (a custom policy: `restrictions`, assigned to an application through
  /applications/{id}/appManagementPolicies, which then applies instead of the tenant's default);
- `identitysecuritydefaultsenforcementpolicy-get.md` (isEnabled);
- `conditionalaccessroot-list-policies.md` and `resources/conditionalaccessusers.md` (state, conditions.users
  includeUsers All / IDs, excludeUsers, includeGroups, excludeGroups; grantControls.builtInControls mfa, block);
- `user-list-transitivememberof.md` (groups and directoryRole objects, told apart by @odata.type);
- each page's permission table: an app-only caller without one of the listed permissions gets 403
  Authorization_RequestDenied;
- Graph's throttling limits ("Identity protection and Conditional Access": one request per second per
  tenant, all applications together, no Retry-After): tests inject that 429 as a Fault without headers.
`addPassword`'s refusals carry the codes and messages users reported (Microsoft documents none):
CredentialTypeNotAllowedAsPerAppPolicy (microsoft/PubSec-Info-Assistant #681) and
CredentialInvalidLifetimeAsPerAppPolicy (KelvinTegelaar/CIPP-API PR #1970).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

Answer = tuple[int, dict[str, Any]]

READ_PERMISSIONS = {
    "/policies/defaultAppManagementPolicy": {"Policy.Read.All", "Policy.Read.ApplicationConfiguration",
                                             "Policy.ReadWrite.ApplicationConfiguration"},
    "/policies/identitySecurityDefaultsEnforcementPolicy": {"Policy.Read.All", "Policy.ReadWrite.SecurityDefaults"},
    "/identity/conditionalAccess/policies": {"Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"},
    "appManagementPolicies": {"Policy.Read.All", "Policy.ReadWrite.ApplicationConfiguration"},
}
DEFAULT_POLICY_ID = "00000000-0000-0000-0000-000000000000"


def default_app_management_policy(enabled: bool = False, *restrictions: dict[str, Any]) -> dict[str, Any]:
    """The tenant's default policy as GET /policies/defaultAppManagementPolicy returns it."""
    return {"id": DEFAULT_POLICY_ID, "displayName": "Default app management tenant policy",
            "description": "Default tenant policy that enforces app management restrictions on applications and "
                           "service principals.", "isEnabled": enabled,
            "applicationRestrictions": {"passwordCredentials": list(restrictions), "keyCredentials": []},
            "servicePrincipalRestrictions": {"passwordCredentials": [], "keyCredentials": []}}


def restriction(kind: str, max_lifetime: str | None = None, after: str | None = None,
                state: str = "enabled") -> dict[str, Any]:
    return {"restrictionType": kind, "state": state, "maxLifetime": max_lifetime,
            "restrictForAppsCreatedAfterDateTime": after}


def serve(d: Any, claims: dict[str, Any], method: str, path: str, query: dict[str, list[str]], body: Any
          ) -> Answer | None:
    if method != "GET":
        return None
    if refused := _refused(claims, path):
        return refused
    if path == "/policies/defaultAppManagementPolicy":
        return 200, d.default_app_policy
    if path == "/policies/identitySecurityDefaultsEnforcementPolicy":
        return 200, {"id": "00000000-0000-0000-0000-000000000005", "displayName": "Security Defaults",
                     "description": "Security defaults is a set of basic identity security mechanisms recommended "
                                    "by Microsoft.", "isEnabled": d.security_defaults}
    if path == "/identity/conditionalAccess/policies":
        return 200, {"value": d.ca_policies}
    if match := re.fullmatch(r"/applications/([^/]+)/appManagementPolicies", path):
        policy = d.app_policies.get(d.policy_assignments.get(match.group(1)))
        return 200, {"value": [policy] if policy else []}
    if match := re.fullmatch(r"/applications/([^/]+)", path):
        found = [a for a in d.apps.values() if a.object_id == match.group(1)]
        if found:
            a = found[0]
            return 200, {"id": a.object_id, "appId": a.client_id, "displayName": a.display_name,
                         "createdDateTime": a.created}
        return None  # an application the Azure CLI made: fake_entra_objects.py
    if path == "/me/transitiveMemberOf":
        user = d.users.get(str(claims.get("sub", "")).removeprefix("user:").lower())
        return (200, {"value": _memberships(user)}) if user else None
    if match := re.fullmatch(r"/users/([^/]+)/transitiveMemberOf", path):
        key = match.group(1).lower()
        user = d.users.get(key) or next((u for u in d.users.values() if u.id == key), None)
        if user is None:
            return 404, _error("Request_ResourceNotFound", f"Resource '{match.group(1)}' does not exist or one of "
                               "its queried reference-property objects are not present.")
        return 200, {"value": _memberships(user)}
    return None


def password_refusal(d: Any, app_object_id: str, created: str, credential: dict[str, Any]) -> Answer | None:
    """addPassword's 400 when the policy that applies to the application refuses this secret, else None."""
    policy = d.app_policies.get(d.policy_assignments.get(app_object_id)) or d.default_app_policy
    if not policy.get("isEnabled"):
        return None
    restrictions = (policy.get("applicationRestrictions") or policy.get("restrictions") or {}).get(
        "passwordCredentials") or []
    for r in restrictions:
        after = r.get("restrictForAppsCreatedAfterDateTime")
        if r.get("state", "enabled") != "enabled" or (after and _time(created) < _time(after)):
            continue
        if r["restrictionType"] == "passwordAddition":
            return 400, _error("CredentialTypeNotAllowedAsPerAppPolicy",
                               f"Credential type not allowed as per assigned policy '{policy['id']}'.")
        if r["restrictionType"] == "passwordLifetime":
            start = _time(credential.get("startDateTime") or datetime.now(UTC).isoformat())
            end = _time(credential.get("endDateTime") or "2299-12-31T00:00:00Z")
            days = re.fullmatch(r"P(\d+)D", r["maxLifetime"])
            if days is None:
                raise ValueError(f"the fake reads only maxLifetime PnD, not {r['maxLifetime']}")
            if end - start > timedelta(days=int(days.group(1))):
                return 400, _error("CredentialInvalidLifetimeAsPerAppPolicy", "Credential lifetime exceeds the max "
                                   f"value allowed as per assigned policy '{policy['id']}'.")
    return None


def _refused(claims: dict[str, Any], path: str) -> Answer | None:
    if not str(claims.get("sub", "")).startswith("app:"):
        return None  # a signed-in admin: its directory role decides, which the fake does not model
    key = "appManagementPolicies" if path.endswith("/appManagementPolicies") else path
    needed = READ_PERMISSIONS.get(key)
    if needed and not needed & set(claims.get("roles") or []):
        return 403, _error("Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    return None


def _memberships(user: Any) -> list[dict[str, Any]]:
    groups = [{"@odata.type": "#microsoft.graph.group", "id": g} for g in user.groups]
    roles = [{"@odata.type": "#microsoft.graph.directoryRole", "id": str(uuid.uuid5(uuid.NAMESPACE_OID, r)),
              "displayName": None, "roleTemplateId": r} for r in user.roles]
    return groups + roles


def _time(text: str) -> datetime:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "innerError": {"request-id": str(uuid.uuid4())}}}
