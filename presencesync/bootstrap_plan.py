"""What the partner's one-time set-up (scripts/bootstrap.sh) must give the two pipeline identities, derived
from the profiles the stacks use, and which customer tenants must consent.

The deployer (`pulumi up` in every customer tenant) needs Microsoft Graph application permissions for
what the program declares and the preflight reads: the application and its service principal and the
tenant's sign-in and app management policies always, delegated consent
(oauth2PermissionGrants) when a profile requests delegated scopes, app role assignments when a profile
requests application permissions, and the sync user's account, group and licence when a stack creates it.
The read-only preview identity (a pull request's `pulumi preview` after approval) only reads the same
objects: `Directory.Read.All` is Graph's least-privileged application permission for listing delegated
permission grants (Graph v1.0, "List oauth2PermissionGrants", permissions table), and it also reads
applications, service principals, users, groups and domains.

Permissions are named here; their IDs are read by name from the Graph service principal in the tenant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from presencesync.errors import PresenceSyncError
from presencesync.permissions import PROFILE_NAMES, PROFILES, Profile
from presencesync.project_config import stack_settings

# Policy.Read.All: the preflight reads the tenant's app management policies, security defaults and
# Conditional Access before `pulumi up`; without it those checks are reported unread.
ALWAYS = ("Application.ReadWrite.All", "User.Read.All", "Domain.Read.All", "Policy.Read.All")
DELEGATED_CONSENT = "DelegatedPermissionGrant.ReadWrite.All"
APP_ROLE_CONSENT = "AppRoleAssignment.ReadWrite.All"
SYNC_USER_CREATION = ("User.ReadWrite.All", "Group.ReadWrite.All", "LicenseAssignment.ReadWrite.All")
PREVIEW_ROLES = ("Directory.Read.All",)


class BootstrapPlanError(PresenceSyncError):
    """The stacks or the arguments do not say what the set-up must grant."""


@dataclass(frozen=True)
class Plan:
    profiles: tuple[Profile, ...]
    creates_sync_users: bool
    tenants: dict[str, str]  # stack name -> customer tenant ID (azuread:tenantId)

    @property
    def deployer_roles(self) -> tuple[str, ...]:
        return deployer_roles(self.profiles, creates_sync_users=self.creates_sync_users)


def deployer_roles(profiles: Iterable[Profile], *, creates_sync_users: bool) -> tuple[str, ...]:
    """The Graph application permissions the deployer needs for stacks of these profiles."""
    apis = [api for profile in profiles for api in PROFILES[profile]]
    roles = [*ALWAYS]
    if any(api.scopes for api in apis):
        roles.append(DELEGATED_CONSENT)
    if any(api.roles for api in apis):
        roles.append(APP_ROLE_CONSENT)
    if creates_sync_users:
        roles += SYNC_USER_CREATION
    return tuple(roles)


def from_stacks(project_dir: Path, stack_names: list[str]) -> Plan:
    """The profiles, sync-user creation and tenants of these stacks (names as `fleet.find_stacks` lists
    them, which refuses a name Pulumi would not take), each validated as `check` does."""
    if not stack_names:
        raise BootstrapPlanError(f"no Pulumi.<stack>.yaml in {project_dir} matches; pass --profiles ucwa,graph "
                                 "(and --creates-sync-users if a stack will set syncUser.create: true)")
    profiles: set[Profile] = set()
    creates = False
    tenants: dict[str, str] = {}
    for name in stack_names:
        settings, _, _ = stack_settings(project_dir / f"Pulumi.{name}.yaml", name, datetime.now(UTC))
        profiles.add(settings.profile)
        creates = creates or settings.sync_user.create
        tenants[name] = settings.tenant_id.lower()  # a GUID: the settings refuse anything else
    return Plan(tuple(p for p in PROFILE_NAMES if p in profiles), creates, tenants)


def from_arguments(profiles: str, *, creates_sync_users: bool) -> Plan:
    """The plan for profiles named on the command line (before any stack exists)."""
    names = [p.strip() for p in profiles.split(",") if p.strip()]
    unknown = [p for p in names if p not in PROFILE_NAMES]
    if unknown or not names:
        raise BootstrapPlanError(f"--profiles '{profiles}': give one or more of {', '.join(PROFILE_NAMES)}, "
                                 "separated by commas")
    return Plan(tuple(p for p in PROFILE_NAMES if p in names), creates_sync_users, {})


def lines(plan: Plan) -> list[str]:
    """The plan as `KIND VALUE...` lines, one fact a line, for the bootstrap script to read."""
    return [*(f"profile {p}" for p in plan.profiles),
            *(f"deployer-role {r}" for r in plan.deployer_roles),
            *(f"preview-role {r}" for r in PREVIEW_ROLES),
            *(f"tenant {stack} {tenant}" for stack, tenant in sorted(plan.tenants.items()))]
