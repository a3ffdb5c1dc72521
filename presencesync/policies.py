"""The security invariants of a PresenceSync tenant, as Pulumi policies: the pack in policy/ serves
them to `pulumi preview --policy-pack policy`, and `check` runs them on the planned resources.

Each policy is a plain validate function over one resource's inputs (camelCase, as the engine sends
them; values arrive as pulumi_policy proxies, so messages format them with list()/sorted()). Which
profile an application serves is read off what it requests: application permissions (type Role)
mean `graph`, anything else `ucwa`. In a preview an input may be unknown: reading it raises the
SDK's UnknownValueError, and the SDK then reports an advisory "can't run policy during preview" for
that policy and resource instead of a violation; the policy runs again at `pulumi up`, when the value
is known. No policy catches that error, so an unknown never passes as compliant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pulumi.runtime
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

from presencesync.config_client_secrets import NEVER_EXPIRES
from presencesync.names import APP_ROLE_ASSIGNMENT, APPLICATION, DELEGATED_GRANT, PASSWORD, PERSONAL_AUDIENCES
from presencesync.permissions import PROFILES, Profile
from presencesync.secret_lifetime import TWO_YEARS, SecretSpan, secret_span
from presencesync.sync_users import sizing_problem

USER, GROUP = "azuread:index/user:User", "azuread:index/group:Group"
GROUP_LICENSE = "azuread:index/groupLicense:GroupLicense"

Validate = Callable[[Any, ReportViolation], None]
StackValidate = Callable[[Any, ReportViolation], None]
# The IDs a profile's permissions have in the tenant: (resource app ID, "Scope" or "Role") -> IDs. The
# Skype for Business Online IDs are not published, so they are read by name from the tenant, as the
# program reads them.
TenantIds = Callable[[Profile], Mapping[tuple[str, str], frozenset[str]]]
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def profile_of(application: Mapping[str, Any]) -> Profile:
    accesses = [a for r in application.get("requiredResourceAccesses") or [] for a in r.get("resourceAccesses") or []]
    return "graph" if any(a.get("type") == "Role" for a in accesses) else "ucwa"


def single_tenant_audience(args: Any, report: ReportViolation) -> None:
    if args.resource_type != APPLICATION:
        return
    audience = args.props.get("signInAudience")
    allowed = ["AzureADMyOrg"] + (["AzureADMultipleOrgs"] if args.get_config().get("allowMultiTenant") else [])
    if audience not in allowed and audience not in PERSONAL_AUDIENCES:
        report(f"signInAudience is {audience}; PresenceSync apps are single-tenant (AzureADMyOrg). If this stack "
               "really serves several tenants, allow it with this policy's allowMultiTenant: true", None)


def no_personal_accounts(args: Any, report: ReportViolation) -> None:
    if args.resource_type == APPLICATION and args.props.get("signInAudience") in PERSONAL_AUDIENCES:
        report(f"signInAudience {args.props.get('signInAudience')} admits personal Microsoft accounts; "
               "use AzureADMyOrg", None)


def secret_at_most_two_years(args: Any, report: ReportViolation) -> None:
    """One rule for every client secret, the never-expiring one included: a secret that outlives two
    years is the same risk however far out its end is (the preflight counts lifetimes the same way)."""
    if args.resource_type != PASSWORD or args.get_config().get("allowLongLived"):
        return
    span = _span(args.props)
    if span is None or span.fits(TWO_YEARS):
        return
    end = args.props.get("endDate")
    lives = ("never expires (secretExpiry: never, until 2100-12-31)" if end == NEVER_EXPIRES else
             f"lives {span.lifetime.days} days (until {end or 'its end'})")
    report(f"the client secret {lives}, more than two years; use secretExpiry 1y or 2y (or a date within two "
           "years), or secretRotationDays; a stack that must keep a longer-lived secret sets this policy's "
           "allowLongLived: true", None)


def _span(props: Mapping[str, Any]) -> SecretSpan | None:
    """A secret's span: from endDate, or from endDateRelative (a Go duration such as 43800h)."""
    now = datetime.now(UTC)
    relative = props.get("endDateRelative")
    if relative:
        found = _DURATION.fullmatch(str(relative))
        if not found or not any(found.groups()):
            return SecretSpan(now, datetime.max.replace(tzinfo=UTC))  # not a duration the provider reads
        hours, minutes, seconds = (float(part or 0) for part in found.groups())
        return SecretSpan(now, now + timedelta(hours=hours, minutes=minutes, seconds=seconds))
    end = props.get("endDate")
    return None if end is None else secret_span(props.get("startDate") or None, str(end), now)


def implicit_grant_only_for_ucwa(args: Any, report: ReportViolation) -> None:
    if args.resource_type != APPLICATION or profile_of(args.props) == "ucwa":
        return
    grant = (args.props.get("web") or {}).get("implicitGrant") or {}
    if grant.get("accessTokenIssuanceEnabled") or grant.get("idTokenIssuanceEnabled"):
        report("implicit grant is on, which Graph presence does not need; remove presencesync:implicitGrant", None)


def public_client_only_for_ucwa(args: Any, report: ReportViolation) -> None:
    if args.resource_type == APPLICATION and profile_of(args.props) == "graph" \
            and args.props.get("fallbackPublicClientEnabled"):
        report("the app is a public client, which Graph presence does not need (the sync user signs in "
               "through the confidential client); remove presencesync:publicClient unless Novus needs it", None)


def expected_permissions_only(tenant_ids: TenantIds) -> Validate:
    """The app requests exactly its profile's APIs, scopes and app roles (compared by ID, as sets), and
    consent grants and app role assignments hold nothing else."""
    def validate(args: Any, report: ReportViolation) -> None:
        if args.resource_type == APPLICATION:
            _check_requested(args.props, tenant_ids, report)
        elif args.resource_type == DELEGATED_GRANT:
            claims = sorted(str(c) for c in args.props.get("claimValues") or [])
            if claims not in [sorted(api.scopes) for apis in PROFILES.values() for api in apis]:
                report(f"the consent grant holds {' '.join(claims) or 'no scopes'}, not one API's scopes of a "
                       "PresenceSync profile", None)
        elif args.resource_type == APP_ROLE_ASSIGNMENT:
            roles = _ids_of_kind(tenant_ids, "Role", report)
            if roles is not None and args.props.get("appRoleId") not in roles:
                report(f"app role {args.props.get('appRoleId')} is not an application permission of a profile", None)
    return validate


def _ids_of_kind(tenant_ids: TenantIds, kind: str, report: ReportViolation) -> set[str] | None:
    found: set[str] = set()
    for profile in PROFILES:
        expected = _looked_up(tenant_ids, profile, report)
        if expected is None:
            return None
        found |= {i for (_, k), ids in expected.items() if k == kind for i in ids}
    return found


def _looked_up(tenant_ids: TenantIds, profile: Profile, report: ReportViolation
               ) -> Mapping[tuple[str, str], frozenset[str]] | None:
    """The tenant's permission IDs for `profile`, or None once a failed lookup is reported."""
    try:
        return tenant_ids(profile)
    except Exception as error:  # a lookup that fails must say so, not crash the preview
        report(f"cannot read the permission IDs from the tenant, so cannot check them: {error}", None)
        return None


def _check_requested(application: Mapping[str, Any], tenant_ids: TenantIds, report: ReportViolation) -> None:
    profile = profile_of(application)
    apis = {api.app_id: api for api in PROFILES[profile]}
    requested = {str(r.get("resourceAppId")): list(r.get("resourceAccesses") or [])
                 for r in application.get("requiredResourceAccesses") or []}
    if set(requested) != set(apis):
        report(f"the app requests APIs {', '.join(sorted(requested))}; profile {profile} requests exactly "
               f"{', '.join(sorted(apis))}", None)
        return
    expected = _looked_up(tenant_ids, profile, report)
    if expected is None:
        return
    for app_id, accesses in requested.items():
        api = apis[app_id]
        for kind, names in (("Scope", api.scopes), ("Role", api.roles)):
            got = [str(a.get("id")) for a in accesses if a.get("type") == kind]
            if sorted(got) != sorted(expected.get((app_id, kind), frozenset())) or len(set(got)) != len(got):
                report(f"the app requests {kind} permissions {', '.join(sorted(got)) or 'none'} of {api.api}; "
                       f"profile {profile} requests exactly {', '.join(names) or 'none'}", None)


def deployer_among_owners(deployer: Callable[[], str]) -> Validate:
    """The deployer must own the application: the azuread provider removes a caller that `owners` omits,
    which locks out a deployer that may only manage the apps it owns."""
    def validate(args: Any, report: ReportViolation) -> None:
        if args.resource_type != APPLICATION:
            return
        try:
            who = deployer()
        except Exception as error:  # a lookup that fails must say so, not crash the preview
            report(f"cannot tell who deploys, so cannot check the owners: {error}", None)
            return
        owners = {str(o).lower() for o in args.props.get("owners") or []}
        if who.lower() not in owners:
            report(f"the deployer ({who}) is not among the application's owners; list it, or the "
                   "provider removes it and locks the deployer out", None)
    return validate


def sync_user_collection(stack_config: Callable[[], Mapping[str, str]]) -> StackValidate:
    """Novus's collection of sync users, over the whole stack: enough of them for watchedUsers, every one an owner
    of the application (the created ones by object ID, and at least as many owners besides the deployer as there
    are sync users), every created one licensed through the licence group unless licensedElsewhere says so."""
    def validate(args: Any, report: ReportViolation) -> None:
        config = stack_config()
        listed = _listed_sync_users(config)
        watched = str(config.get("presencesync:watchedUsers") or "")
        if watched.isdigit() and (too_few := sizing_problem(str(config.get("presencesync:profile") or "ucwa"),
                                                            int(watched) or None, len(listed))):
            report(too_few, None)
        users = [r for r in args.resources if r.resource_type == USER]
        licensed = {str(m).lower() for group in args.resources if group.resource_type == GROUP
                    and any(str(lic.props.get("groupObjectId")) == str(group.props.get("objectId"))
                            for lic in args.resources if lic.resource_type == GROUP_LICENSE)
                    for m in group.props.get("members") or []}
        elsewhere = {str(u.get("userPrincipalName", "")).lower() for u in listed if u.get("licensedElsewhere")}
        for user in users:
            upn, oid = str(user.props.get("userPrincipalName")), str(user.props.get("objectId")).lower()
            if oid not in licensed and upn.lower() not in elsewhere:
                report(f"sync user {upn} has no licence: it is not in the licence group (syncUsers licenseSkuId)",
                       user.urn)
        for app in (r for r in args.resources if r.resource_type == APPLICATION):
            owners = {str(o).lower() for o in app.props.get("owners") or []}
            for user in users:
                if str(user.props.get("objectId")).lower() not in owners:
                    report(f"sync user {user.props.get('userPrincipalName')} does not own the application", app.urn)
            if len(owners) < len(listed) + 1:
                report(f"the application has {len(owners)} owners, fewer than its {len(listed)} sync users and the "
                       "deployer: every sync user must own it", app.urn)
    return validate


def _listed_sync_users(config: Mapping[str, str]) -> list[dict[str, Any]]:
    """The stack's sync users as configured (the one-user form or the collection)."""
    for key in ("presencesync:syncUsers", "presencesync:syncUser"):
        try:
            value = json.loads(str(config.get(key) or "null"))
        except ValueError:
            continue
        if isinstance(value, list):
            return [u for u in value if isinstance(u, dict)]
        if isinstance(value, dict) and value:
            return [value]
    return []


def policies(deployer: Callable[[], str], tenant_ids: TenantIds,
             stack_config: Callable[[], Mapping[str, str]] = pulumi.runtime.get_config_env
             ) -> list[ResourceValidationPolicy | StackValidationPolicy]:
    mandatory, advisory = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY
    return [
        ResourceValidationPolicy(
            "single-tenant-audience", "Applications are single-tenant unless explicitly allowed.",
            single_tenant_audience, mandatory, PolicyConfigSchema(
                {"allowMultiTenant": {"type": "boolean", "default": False}})),
        ResourceValidationPolicy("no-personal-accounts", "Never a personal-account audience.",
                                 no_personal_accounts, mandatory),
        ResourceValidationPolicy(
            "secret-at-most-two-years", "Client secrets live at most two years, never-expiring ones included.",
            secret_at_most_two_years, mandatory, PolicyConfigSchema(
                {"allowLongLived": {"type": "boolean", "default": False}})),
        ResourceValidationPolicy("implicit-grant-only-for-ucwa", "Implicit grant only where the profile needs it.",
                                 implicit_grant_only_for_ucwa, mandatory),
        ResourceValidationPolicy("public-client-only-for-ucwa", "Public client only where the profile needs it.",
                                 public_client_only_for_ucwa, advisory),
        ResourceValidationPolicy("expected-permissions-only", "Only the permissions a profile requests.",
                                 expected_permissions_only(tenant_ids), mandatory),
        ResourceValidationPolicy("deployer-among-owners", "The deployer owns the application.",
                                 deployer_among_owners(deployer), mandatory),
        StackValidationPolicy("sync-user-collection", "Every sync user licensed and an owner, and enough of them.",
                              sync_user_collection(stack_config), mandatory),
    ]
