"""Bring a registration made by hand under management: find it through Graph, write a `pulumi import` file.

Only reads the directory. The import file names each resource as tenant.py names it, under the
Tenant component, so the first `pulumi up` after the import changes nothing it did not have to.
Client secrets cannot be imported: the stack adds its own, and the old ones are left for the admin.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from presencesync.config import Settings
from presencesync.errors import PresenceSyncError
from presencesync.graph import Call, Graph, GraphError, admin_consent_grants
from presencesync.names import (
    APP_ROLE_ASSIGNMENT,
    APPLICATION,
    APPLICATION_NAME,
    COMPONENT_TYPE,
    DELEGATED_GRANT,
    SERVICE_PRINCIPAL,
    SERVICE_PRINCIPAL_NAME,
    consent_name,
)
from presencesync.permissions import PROFILES, Profile

LOOKUP_SECONDS = 60


class AdoptError(PresenceSyncError):
    """The registration cannot be adopted as it is; the message says why and what to do."""


@dataclass(frozen=True)
class Adoption:
    import_file: dict[str, Any]  # what `pulumi import --file` reads
    notes: list[str]  # what the admin must know or do, one line each


def find_registration(graph: Graph, settings: Settings, stack: str, display_name: str) -> Adoption:
    """The import file for the application called `display_name`, its service principal and its consent."""
    name_filter = quote(f"displayName eq '{display_name.replace(chr(39), chr(39) * 2)}'")
    found = graph.send(Call("GET", f"/applications?$filter={name_filter}&$select=id,appId,displayName,"
                            "passwordCredentials", what="find the application")).body.get("value", [])
    if not found:
        raise AdoptError(f"no application named '{display_name}' in this tenant; pass the name it has with "
                         "--display-name (Entra admin center, App registrations)")
    if len(found) > 1:
        ids = ", ".join(sorted(str(a.get("appId")) for a in found))
        raise AdoptError(f"{len(found)} applications are named '{display_name}' (client IDs {ids}); rename or "
                         "delete the ones Novus does not use, then run adopt again")
    app = found[0]
    resources: list[dict[str, Any]] = [
        {"type": COMPONENT_TYPE, "name": stack, "component": True},
        {"type": APPLICATION, "name": APPLICATION_NAME, "id": f"/applications/{app['id']}", "parent": stack}]
    notes = []
    service_principal = _service_principal(graph, str(app["appId"]), "id", "the application's service principal")
    if service_principal is None:
        notes.append("the application has no service principal yet: pulumi up creates it")
    else:
        client = service_principal["id"]
        resources.append({"type": SERVICE_PRINCIPAL, "name": SERVICE_PRINCIPAL_NAME,
                          "id": f"/servicePrincipals/{client}", "parent": stack})
        if settings.consent == "resource":
            resources += _consent(graph, client, stack, settings.profile, notes)
    secrets = app.get("passwordCredentials") or []
    notes.append(f"client secrets cannot be imported: pulumi up adds a new one; enter it in Novus, then delete "
                 f"the {len(secrets)} existing one(s) in the portal ("
                 + (", ".join(f"{s.get('displayName') or 'unnamed'} ending {s.get('endDateTime')}" for s in secrets)
                    or "none") + ")")
    for user in settings.sync_users or (settings.sync_user,):
        if user.create:
            notes.append(f"create is true for sync user {user.user_principal_name}, so pulumi up would create it; a "
                         "user made by hand stays as it is with create: false")
    return Adoption({"resources": resources}, notes)


def _service_principal(graph: Graph, app_id: str, fields: str, what: str) -> dict[str, Any] | None:
    try:
        return graph.send(Call("GET", f"/servicePrincipals(appId='{app_id}')?$select={fields}", what=what)).body
    except GraphError as error:
        if error.status == 404:
            return None
        raise


def _consent(graph: Graph, client: str, stack: str, profile: Profile, notes: list[str]) -> list[dict[str, Any]]:
    grants, assigned = graph.batch([Call("GET", admin_consent_grants(client), what="read the consent grants"),
                                    Call("GET", f"/servicePrincipals/{client}/appRoleAssignments",
                                         what="read the app role assignments")])
    resources = []
    for api in PROFILES[profile]:
        resource = _service_principal(graph, api.app_id, "id,appRoles", f"find {api.api}")
        if resource is None:
            raise AdoptError(f"the tenant has no {api.api} service principal; add it with "
                             f"az ad sp create --id {api.app_id}, then run adopt again")
        grant = [g for g in grants.body.get("value", []) if g.get("resourceId") == resource["id"]]
        if grant:
            resources.append({"type": DELEGATED_GRANT, "name": consent_name(api),
                              "id": f"/oauth2PermissionGrants/{grant[0]['id']}", "parent": stack})
        else:
            notes.append(f"no admin consent for {api.api} yet: pulumi up grants it")
        role_ids = {r.get("value"): r.get("id") for r in resource.get("appRoles", [])}
        for role in api.roles:
            match = [a for a in assigned.body.get("value", [])
                     if a.get("resourceId") == resource["id"] and a.get("appRoleId") == role_ids.get(role)]
            if match:
                resources.append({"type": APP_ROLE_ASSIGNMENT, "name": consent_name(api, role),
                                  "id": f"/servicePrincipals/{resource['id']}/appRoleAssignedTo/{match[0]['id']}",
                                  "parent": stack})
            else:
                notes.append(f"application permission {role} is not granted yet: pulumi up grants it")
    return resources


def import_command(path: str, stack: str, protect: bool) -> str:
    q = shlex.quote
    return f"pulumi import --file {q(path)} --stack {q(stack)} --generate-code=false --protect={str(protect).lower()}"

