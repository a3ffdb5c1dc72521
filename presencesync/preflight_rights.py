"""Does the deployer hold what `pulumi up` will need for this stack's settings (profile, consent mode,
which sync users it creates and licenses)? A service principal: its Microsoft Graph application permissions, as the
README's Prerequisites list them. A signed-in admin: its Entra directory roles. Everything missing is
listed in one line, each with what to grant. With `consent: manual` a human admin grants consent, so
the consent rights are not needed."""

from __future__ import annotations

from dataclasses import dataclass

from presencesync.config import Settings
from presencesync.preflight_findings import Finding, Reads, sync_users_of

DIRECTORY_WRITE = "Directory.ReadWrite.All"


@dataclass(frozen=True)
class Deployer:
    object_id: str
    app_only: bool  # a service principal (client credentials), else a signed-in user
    token_roles: frozenset[str]  # the token's app roles, for when its assignments cannot be read


@dataclass(frozen=True)
class Need:
    grants: tuple[str, ...]  # any one of these will do (a permission, or a role's template ID)
    why: str
    consent: bool = False  # only needed when presencesync grants consent itself


def permissions_needed(settings: Settings) -> list[Need]:
    """The Graph application permissions a deploying service principal needs (README, Prerequisites)."""
    needs = [Need(("Application.ReadWrite.All",), "to create the application and its service principal"),
             Need(("DelegatedPermissionGrant.ReadWrite.All", DIRECTORY_WRITE), "to grant admin consent", True),
             Need(("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", DIRECTORY_WRITE),
                  "to look up the sync user"),
             Need(("Domain.Read.All", "Directory.Read.All", DIRECTORY_WRITE), "to read the tenant's default domain")]
    if settings.profile == "graph":
        needs.append(Need(("AppRoleAssignment.ReadWrite.All",), "to grant the app's Graph application permissions",
                          True))
    if any(u.create for u in sync_users_of(settings)):
        needs.append(Need(("User.ReadWrite.All", DIRECTORY_WRITE), "to create the sync users"))
        if any(u.create and u.license_sku_id for u in sync_users_of(settings)):
            needs += [Need(("Group.ReadWrite.All", DIRECTORY_WRITE), "to create the sync user's licence group"),
                      Need(("LicenseAssignment.ReadWrite.All", DIRECTORY_WRITE), "to license that group")]
    return needs


# Entra built-in roles by template ID (Entra docs, "Microsoft Entra built-in roles").
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
CLOUD_APPLICATION_ADMINISTRATOR = "158c047a-c907-4556-b7ef-446551a6b5f7"
APPLICATION_ADMINISTRATOR = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"
LICENSE_ADMINISTRATOR = "4d6ac14f-3453-41d0-bef9-a3e0c569773a"
ROLE_NAMES = {GLOBAL_ADMINISTRATOR: "Global Administrator", PRIVILEGED_ROLE_ADMINISTRATOR: "Privileged Role "
              "Administrator", CLOUD_APPLICATION_ADMINISTRATOR: "Cloud Application Administrator",
              APPLICATION_ADMINISTRATOR: "Application Administrator", USER_ADMINISTRATOR: "User Administrator",
              LICENSE_ADMINISTRATOR: "License Administrator"}


def roles_needed(settings: Settings) -> list[Need]:
    """The directory roles a signed-in admin needs (README, Prerequisites). Cloud Application and
    Application Administrators may consent to delegated permissions but not to Microsoft Graph's
    application permissions, which profile graph requests (Entra docs, "Grant tenant-wide admin consent")."""
    app_admins = (GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR, CLOUD_APPLICATION_ADMINISTRATOR,
                  APPLICATION_ADMINISTRATOR)
    needs = [Need(app_admins, "to register the application")]
    if settings.profile == "graph":
        needs.append(Need((GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR),
                          "to consent to Microsoft Graph application permissions", True))
    else:
        needs.append(Need(app_admins, "to grant admin consent", True))
    if any(u.create for u in sync_users_of(settings)):
        needs.append(Need((GLOBAL_ADMINISTRATOR, USER_ADMINISTRATOR), "to create the sync users and their group"))
        if any(u.create and u.license_sku_id for u in sync_users_of(settings)):
            needs.append(Need((GLOBAL_ADMINISTRATOR, LICENSE_ADMINISTRATOR), "to license the sync user's group"))
    return needs


def deployer_rights(settings: Settings, deployer: Deployer, reads: Reads) -> list[Finding]:
    if deployer.app_only:
        held, needs, who = _app_roles(deployer, reads), permissions_needed(settings), "Graph application permission"
        grant = ("an admin adds them to the deployer's app registration (API permissions > Microsoft Graph > "
                 "Application permissions) and grants admin consent")
    else:
        memberships = reads.value("deployer roles")
        if memberships is None:
            return []  # said by the read
        held = {str(m.get("roleTemplateId")) for m in memberships
                if m.get("@odata.type") == "#microsoft.graph.directoryRole"}
        needs, who = roles_needed(settings), "Entra role"
        grant = "a Privileged Role Administrator assigns them (Entra admin center > Roles and admins)"
    missing = [n for n in needs if not (settings.consent == "manual" and n.consent) and not held & set(n.grants)]
    if not missing:
        return []
    # A permission by the name the README lists (broader ones also count); a role as any that will do.
    listed = "; ".join(f"{n.grants[0] if deployer.app_only else ' or '.join(ROLE_NAMES[g] for g in n.grants)} "
                       f"{n.why}" for n in missing)
    manual = "" if settings.consent == "manual" or not any(n.consent for n in missing) else \
        " (with consent: manual, an admin grants consent instead and those are not needed)"
    kind = "service principal" if deployer.app_only else "user"
    return [Finding(True, "deployer", f"the deployer ({kind} {deployer.object_id}) lacks the {who}s pulumi up needs "
                    f"for this stack: {listed}; {grant}{manual}")]


def _app_roles(deployer: Deployer, reads: Reads) -> set[str]:
    """The deployer's Graph app roles by name: its assignments on Graph's service principal, or, where
    those cannot be read, the roles its token carries (the same assignments, as of the token)."""
    assignments, graph = reads.value("deployer roles"), reads.body("graph")
    if assignments is None or graph is None:
        return set(deployer.token_roles)
    names = {r.get("id"): r.get("value") for r in graph.get("appRoles") or []}
    return {str(names[a.get("appRoleId")]) for a in assignments
            if a.get("resourceId") == graph.get("id") and a.get("appRoleId") in names}
