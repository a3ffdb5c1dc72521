"""Consent by the post-deploy step (`consent: hook`): one AllPrincipals delegated grant per API holding
its scopes, and the app's app role assignments; in check mode, what lacks is drift."""

from __future__ import annotations

from presencesync.errors import StepFailedError
from presencesync.graph import Call, Graph, admin_consent_grants
from presencesync.permissions import ApiPermissions
from presencesync.stack_outputs import Deployed


def ensure_consent(graph: Graph, deployed: Deployed, apis: tuple[ApiPermissions, ...], *, write: bool,
                    drift: list[str]) -> None:
    """Make one AllPrincipals grant per API hold the required scopes, and the app hold its app roles;
    in check mode add what lacks to drift."""
    client = deployed.service_principal_object_id
    reads = [Call("GET", f"/servicePrincipals(appId='{api.app_id}')?$select=id,appRoles",
                  what=f"consent: look up {api.api}") for api in apis] + [
        Call("GET", admin_consent_grants(client), what="consent: read the grants"),
        Call("GET", f"/servicePrincipals/{client}/appRoleAssignments", what="consent: read the app role assignments")]
    answers = graph.batch(reads, replicating=True)
    grants, assigned = answers[-2].body.get("value", []), answers[-1].body.get("value", [])
    writes: list[Call] = []
    lacking: list[str] = []
    for api, answer in zip(apis, answers, strict=False):
        resource = answer.body["id"]
        offered = {r.get("value"): r.get("id") for r in answer.body.get("appRoles", [])}
        have_roles = {a.get("appRoleId") for a in assigned if a.get("resourceId") == resource}
        for role in api.roles:
            if role not in offered:
                raise StepFailedError("consent", f"the {api.api} service principal offers no application "
                                      f"permission {role}; check the tenant (az ad sp show --id {api.app_id})")
            if offered[role] not in have_roles:
                lacking.append(f"consent: {api.api} application permission {role} is not granted")
                writes.append(Call("POST", f"/servicePrincipals/{client}/appRoleAssignments", {
                    "principalId": client, "resourceId": resource, "appRoleId": offered[role]},
                    what=f"consent: grant {role}"))
        existing = [g for g in grants if g.get("resourceId") == resource]
        have = existing[0].get("scope", "").split() if existing else []
        missing = [s for s in api.scopes if s not in have]
        if not missing:
            continue
        lacking.append(f"consent: {api.api} lacks {' '.join(missing)}")
        if existing:  # add what is missing, keep what others granted
            writes.append(Call("PATCH", f"/oauth2PermissionGrants/{existing[0]['id']}",
                               {"scope": " ".join(have + missing)}, what=f"consent: add scopes for {api.api}"))
        else:
            writes.append(Call("POST", "/oauth2PermissionGrants", {
                "clientId": client, "consentType": "AllPrincipals", "resourceId": resource,
                "scope": " ".join(api.scopes)}, what=f"consent: grant {api.api}"))
    if not write:
        drift.extend(lacking)
    elif writes:
        graph.batch(writes, replicating=True)
