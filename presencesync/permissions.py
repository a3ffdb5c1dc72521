"""Which APIs, delegated scopes and application roles each profile requests, by name.

IDs of scopes and roles are never written here: they are resolved by name from the resource API's
service principal in the tenant. The only IDs kept are the resource applications' well-known app IDs
and the few permission IDs that Microsoft publishes (facts.md), for the offline manifest.
"""

from __future__ import annotations

from dataclasses import dataclass

SKYPE_FOR_BUSINESS_ONLINE = "00000004-0000-0ff1-ce00-000000000000"
MICROSOFT_GRAPH = "00000003-0000-0000-c000-000000000000"


@dataclass(frozen=True)
class ApiPermissions:
    api: str  # the resource API's name, for messages and resource names
    app_id: str
    scopes: tuple[str, ...]  # delegated permissions, by value


PROFILES: dict[str, tuple[ApiPermissions, ...]] = {
    "ucwa": (
        ApiPermissions("Skype for Business Online", SKYPE_FOR_BUSINESS_ONLINE,
                       ("Contacts.ReadWrite", "User.ReadWrite")),
        ApiPermissions("Microsoft Graph", MICROSOFT_GRAPH, ("User.Read",)),
    ),
}

# (resource app ID, kind, value) -> ID, for IDs Microsoft publishes. Source: azure-cli role/custom.py.
PUBLISHED_IDS: dict[tuple[str, str, str], str] = {
    (MICROSOFT_GRAPH, "Scope", "User.Read"): "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
}


class PermissionNotFoundError(Exception):
    """The resource API's service principal in this tenant does not offer a permission we need."""


def scope_ids(api: ApiPermissions, offered: dict[str, str]) -> list[str]:
    """The IDs of `api`'s scopes, from the scope-value-to-ID map its service principal offers."""
    missing = [s for s in api.scopes if s not in offered]
    if missing:
        raise PermissionNotFoundError(
            f"the {api.api} service principal ({api.app_id}) in this tenant offers no delegated "
            f"permission {', '.join(missing)}; check that the tenant has {api.api} "
            f"(az ad sp show --id {api.app_id})")
    return [offered[s] for s in api.scopes]
