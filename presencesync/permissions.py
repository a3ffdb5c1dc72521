"""Which APIs, delegated scopes and application roles each profile requests, by name.

IDs of scopes and roles are resolved by name from the resource API's service principal in the
tenant. The only IDs kept here are the resource applications' well-known app IDs and the permission
IDs Microsoft publishes (sources below), for the offline manifest and the policy pack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from presencesync.errors import PresenceSyncError

SKYPE_FOR_BUSINESS_ONLINE = "00000004-0000-0ff1-ce00-000000000000"
MICROSOFT_GRAPH = "00000003-0000-0000-c000-000000000000"



@dataclass(frozen=True)
class ApiPermissions:
    api: str  # the resource API's name, for messages and resource names
    app_id: str
    scopes: tuple[str, ...]  # delegated permissions, by value
    roles: tuple[str, ...] = ()  # application permissions (app roles), by value


Profile = Literal["ucwa", "graph"]
PROFILE_NAMES: tuple[Profile, ...] = get_args(Profile)

PROFILES: dict[Profile, tuple[ApiPermissions, ...]] = {
    # Skype for Business Online's UCWA, signed in to as the sync user (the manual guide).
    "ucwa": (
        ApiPermissions("Skype for Business Online", SKYPE_FOR_BUSINESS_ONLINE,
                       ("Contacts.ReadWrite", "User.ReadWrite")),
        ApiPermissions("Microsoft Graph", MICROSOFT_GRAPH, ("User.Read",)),
    ),
    # Teams presence through Microsoft Graph: the app reads and sets presence on its own; the sync
    # user subscribes to presence change notifications (delegated only) and reads its own profile,
    # which post-deploy's licence and ownership checks need.
    "graph": (
        ApiPermissions("Microsoft Graph", MICROSOFT_GRAPH, ("Presence.Read.All", "User.Read"),
                       ("Presence.ReadWrite.All", "User.ReadBasic.All")),
    ),
}

# (resource app ID, kind, value) -> ID, for IDs Microsoft publishes. Sources: azure-cli role/custom.py
# (User.Read) and the Microsoft Graph permissions reference (the rest).
PUBLISHED_IDS: dict[tuple[str, str, str], str] = {
    (MICROSOFT_GRAPH, "Scope", "User.Read"): "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
    (MICROSOFT_GRAPH, "Scope", "Presence.Read.All"): "9c7a330d-35b3-4aa1-963d-cb2b9f927841",
    (MICROSOFT_GRAPH, "Role", "Presence.ReadWrite.All"): "83cded22-8297-4ff6-a7fa-e97e9545a259",
    (MICROSOFT_GRAPH, "Role", "User.ReadBasic.All"): "97235f07-e226-4f63-ace3-39588e11d3a1",
}


def published_ids(api: ApiPermissions, kind: str) -> tuple[str, ...] | None:
    """The published IDs of `api`'s delegated scopes (kind "Scope") or app roles ("Role"), in the
    profile's order; None when any of them is not published."""
    ids = [PUBLISHED_IDS.get((api.app_id, kind, name)) for name in (api.scopes if kind == "Scope" else api.roles)]
    return None if None in ids else tuple(str(i) for i in ids)


class PermissionNotFoundError(PresenceSyncError):
    """The resource API's service principal in this tenant does not offer a permission we need."""


def scope_ids(api: ApiPermissions, offered: Mapping[str, str]) -> list[str]:
    """The IDs of `api`'s delegated scopes, from the scope-value-to-ID map its service principal offers."""
    return _ids(api, api.scopes, offered, "delegated permission")


def role_ids(api: ApiPermissions, offered: Mapping[str, str]) -> list[str]:
    """The IDs of `api`'s application roles, from the role-value-to-ID map its service principal offers."""
    return _ids(api, api.roles, offered, "application permission")


def _ids(api: ApiPermissions, wanted: tuple[str, ...], offered: Mapping[str, str], kind: str) -> list[str]:
    missing = [s for s in wanted if s not in offered]
    if missing:
        raise PermissionNotFoundError(
            f"the {api.api} service principal ({api.app_id}) in this tenant offers no {kind} "
            f"{', '.join(missing)}; check that the tenant has {api.api} "
            f"(az ad sp show --id {api.app_id})")
    return [offered[s] for s in wanted]
