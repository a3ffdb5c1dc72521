"""A loopback stand-in for the few Azure Resource Manager calls scripts/bootstrap.sh makes through the real
Azure CLI: resource group, storage account (its blob service properties and a container), Key Vault and a
key, role definitions and role assignments. fake_entra.py routes `/subscriptions...` and `/tenants` here.

Resources are kept by ID (ARM IDs are case-insensitive) as the JSON ARM answers; every request is recorded,
so a test can count the writes. What it models, from the sources named:
- GET of a missing resource is 404 with an ARM error body, which az turns into exit status 3
  (azure-cli core/util.py, `get_error_type_by_status_code` and `handle_exception`).
- PUT answers 200 with `provisioningState: Succeeded`, which ends azure-core's ARM long-running
  operation poller at once (200 is the one status every create here accepts: the storage SDK's
  `_create_initial` takes 200 or 202, not 201; azure-mgmt-storage and -keyvault `_operations.py`); a blob service's properties exist with every account (ARM's
  blobServices/default), versioning and soft delete off until set.
- A key PUT through ARM creates the key's first version only: an existing key is returned unchanged
  (azure-mgmt-keyvault `KeysOperations.create_if_not_exist`).
- Role assignments: az resolves a role name through `roleDefinitions?$filter=roleName eq '...'` and
  lists a scope's assignments with `$filter=atScope()` (azure-cli role/custom.py `_resolve_role_id`,
  `_search_role_assignments`); a second assignment of one role to one principal at one scope is 409
  `RoleAssignmentExists`. The built-in role IDs are Azure's (Azure built-in roles reference).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

BUILT_IN_ROLES = {
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Key Vault Crypto User": "12338af0-0e69-4776-bea7-57ae8d297424",
}
_PROVIDER_TYPES = {"resourcegroups": "Microsoft.Resources/resourceGroups"}


@dataclass
class Arm:
    tenant_id: str
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-cased ID -> resource JSON
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)

    def add_subscription(self, subscription_id: str, name: str = "Partner") -> None:
        self.subscriptions.append({"id": f"/subscriptions/{subscription_id}", "subscriptionId": subscription_id,
                                   "tenantId": self.tenant_id, "displayName": name, "state": "Enabled",
                                   "subscriptionPolicies": {}, "authorizationSource": "RoleBased"})

    def get(self, resource_id: str) -> dict[str, Any] | None:
        return self.resources.get(resource_id.lower())


Answer = tuple[int, dict[str, Any]]


def serve(arm: Arm, method: str, url: str, body: Any) -> Answer:
    parts = urlsplit(url)
    path, query = unquote(parts.path).rstrip("/"), parse_qs(parts.query)
    arm.requests.append((method, path))
    if path == "/subscriptions" and method == "GET":
        return 200, {"value": arm.subscriptions}
    if path == "/tenants" and method == "GET":
        return 200, {"value": [{"id": f"/tenants/{arm.tenant_id}", "tenantId": arm.tenant_id}]
                     if arm.subscriptions else []}
    if match := re.fullmatch(r"/subscriptions/([^/]+)", path):
        found = [s for s in arm.subscriptions if s["subscriptionId"] == match.group(1)]
        return (200, found[0]) if found else _error(404, "SubscriptionNotFound", f"'{match.group(1)}' not found")
    if path.lower().endswith("/checknameavailability") and method == "POST":
        return 200, {"nameAvailable": not any(r["name"] == (body or {}).get("name") for r in arm.resources.values())}
    if match := re.fullmatch(r"(.*)/providers/Microsoft\.Authorization/roleDefinitions", path, re.IGNORECASE):
        return 200, {"value": _role_definitions(match.group(1), query.get("$filter", [""])[0])}
    if match := re.fullmatch(r"(.*)/providers/Microsoft\.Authorization/roleAssignments", path, re.IGNORECASE):
        scope = match.group(1).lower()
        return 200, {"value": [r for r in arm.resources.values() if r["type"] == "Microsoft.Authorization/roleAssignments"
                               and r["properties"]["scope"].lower() == scope]}
    if match := re.fullmatch(r"(.*)/providers/Microsoft\.Authorization/roleAssignments/([^/]+)", path, re.IGNORECASE):
        return _role_assignment(arm, method, path, match.group(1), match.group(2), body)
    if not path.lower().startswith("/subscriptions/") or not any(s["subscriptionId"].lower() == path.split("/")[2].lower()
                                                              for s in arm.subscriptions):
        return _error(404, "SubscriptionNotFound", f"The subscription of '{path}' could not be found.")
    return _resource(arm, method, path, body)


def _resource(arm: Arm, method: str, path: str, body: Any) -> Answer:
    key = path.lower()
    existing = arm.resources.get(key)
    if method == "GET":
        if existing is not None:
            return 200, existing
        if key.endswith("/blobservices/default") and arm.resources.get(key.rsplit("/blobservices/", 1)[0]):
            return 200, _resource_json(path, {"properties": {"isVersioningEnabled": False,
                                                            "deleteRetentionPolicy": {"enabled": False},
                                                            "containerDeleteRetentionPolicy": {"enabled": False}}})
        parent = _missing_parent(arm, path)
        if parent:
            return parent
        code = "ResourceGroupNotFound" if re.fullmatch(r"/subscriptions/[^/]+/resourcegroups/[^/]+", key) \
            else "ResourceNotFound"
        return _error(404, code, f"The Resource '{path}' was not found.")
    if method == "PUT":
        parent = _missing_parent(arm, path)
        if parent:
            return parent
        if existing is not None and "/providers/microsoft.keyvault/vaults/" in key and "/keys/" in key:
            return 200, existing  # create_if_not_exist: no new version, no update
        resource = _resource_json(path, body or {})
        if "/providers/microsoft.keyvault/vaults/" in key and "/keys/" not in key:
            resource["properties"]["vaultUri"] = f"https://{resource['name']}.vault.azure.net/"
        if "/providers/microsoft.keyvault/vaults/" in key and "/keys/" in key:
            resource["properties"]["keyUri"] = \
                f"https://{path.split('/')[8]}.vault.azure.net/keys/{resource['name']}"
        arm.resources[key] = resource
        return 200, resource
    if method == "PATCH" and existing is not None:
        existing.setdefault("properties", {}).update((body or {}).get("properties", {}))
        return 200, existing
    return _error(405, "MethodNotAllowed", f"{method} {path} is not served by the fake")


def _missing_parent(arm: Arm, path: str) -> Answer | None:
    """ARM refuses a resource in a resource group (or a child of a resource) that does not exist."""
    parts = path.split("/")
    group = "/".join(parts[:5]).lower()
    if len(parts) > 5 and group not in arm.resources:
        return _error(404, "ResourceGroupNotFound", f"Resource group '{parts[4]}' could not be found.")
    providers = path.lower().find("/providers/")
    if providers > 0:
        # /providers/<namespace>/<type>/<name>[/<child type>/<child name>...]: every ancestor must exist
        segments = path[providers:].split("/")
        for end in range(5, len(segments) - 1, 2):
            ancestor = (path[:providers] + "/".join(segments[:end])).lower()
            if ancestor not in arm.resources and not ancestor.endswith("/blobservices/default"):
                return _error(404, "ParentResourceNotFound", f"Can not perform requested operation on nested "
                              f"resource. Parent resource '{segments[end - 1]}' not found.")
    return None


def _resource_json(path: str, body: dict[str, Any]) -> dict[str, Any]:
    parts = path.split("/")
    providers = path.lower().find("/providers/")
    if providers > 0:
        segments = path[providers:].split("/")[2:]  # namespace, then type/name pairs
        kind = "/".join([segments[0], *segments[1::2]])
    else:
        kind = _PROVIDER_TYPES.get(parts[3].lower(), parts[3])
    properties = {**body.get("properties", {}), "provisioningState": "Succeeded"}
    return {**body, "id": path, "name": parts[-1], "type": kind, "properties": properties}


def _role_definitions(scope: str, filter_: str) -> list[dict[str, Any]]:
    wanted = re.findall(r"roleName eq '([^']+)'", filter_)
    subscription = "/".join(scope.split("/")[:3])
    return [{"id": f"{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role_id}", "name": role_id,
             "type": "Microsoft.Authorization/roleDefinitions",
             "properties": {"roleName": name, "type": "BuiltInRole", "permissions": [], "assignableScopes": ["/"]}}
            for name, role_id in BUILT_IN_ROLES.items() if not wanted or wanted[0] == name]


def _role_assignment(arm: Arm, method: str, path: str, scope: str, name: str, body: Any) -> Answer:
    if method != "PUT":
        found = arm.get(path)
        return (200, found) if found else _error(404, "RoleAssignmentNotFound", f"'{name}' not found")
    wanted = (body or {}).get("properties", {})
    for existing in arm.resources.values():
        if existing["type"] == "Microsoft.Authorization/roleAssignments" and \
                existing["properties"]["scope"].lower() == scope.lower() and \
                existing["properties"]["principalId"] == wanted.get("principalId") and \
                existing["properties"]["roleDefinitionId"].lower() == str(wanted.get("roleDefinitionId")).lower():
            return _error(409, "RoleAssignmentExists", "The role assignment already exists.")
    assignment = {"id": path, "name": name, "type": "Microsoft.Authorization/roleAssignments",
                  "properties": {**wanted, "scope": scope, "createdOn": "2026-12-06T00:00:00Z"}}
    arm.resources[path.lower()] = assignment
    return 201, assignment


def _error(status: int, code: str, message: str) -> Answer:
    return status, {"error": {"code": code, "message": message, "details": [], "target": str(uuid.uuid4())}}
