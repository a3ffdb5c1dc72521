"""The security invariants of a PresenceSync tenant, as Pulumi policies (built into a pack in __main__.py).

Each policy is a plain validate function over one resource's inputs (camelCase, as the engine sends
them), so tests call it directly. Which profile an application serves is read off what it requests:
application permissions (type Role) mean `graph`, anything else `ucwa`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, ReportViolation, ResourceValidationPolicy

from presencesync.config import NEVER_EXPIRES, parse_rfc3339
from presencesync.permissions import PROFILES, PUBLISHED_IDS, published_ids

APPLICATION = "azuread:index/application:Application"
PASSWORD = "azuread:index/applicationPassword:ApplicationPassword"
DELEGATED_GRANT = "azuread:index/servicePrincipalDelegatedPermissionGrant:ServicePrincipalDelegatedPermissionGrant"
APP_ROLE_ASSIGNMENT = "azuread:index/appRoleAssignment:AppRoleAssignment"
PERSONAL_AUDIENCES = ("AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount")
MAX_SECRET_LIFETIME = timedelta(days=2 * 365 + 1)  # two years, a leap day included

Validate = Callable[[Any, ReportViolation], None]


def profile_of(application: Mapping[str, Any]) -> str:
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
        report(f"signInAudience {args.props['signInAudience']} admits personal Microsoft accounts; use AzureADMyOrg",
               None)


def secret_at_most_two_years(args: Any, report: ReportViolation) -> None:
    if args.resource_type != PASSWORD or args.props.get("endDate") in (None, NEVER_EXPIRES):
        return
    start = parse_rfc3339(args.props["startDate"]) if args.props.get("startDate") else datetime.now(UTC)
    if parse_rfc3339(args.props["endDate"]) - start > MAX_SECRET_LIFETIME:
        report(f"the client secret lives until {args.props['endDate']}, more than two years; "
               "use secretExpiry 1y or 2y, or secretRotationDays", None)


def secret_never_expires(args: Any, report: ReportViolation) -> None:
    if args.resource_type == PASSWORD and args.props.get("endDate") == NEVER_EXPIRES:
        report("the client secret never expires (secretExpiry: never); prefer 2y or secretRotationDays", None)


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


def expected_permissions_only(args: Any, report: ReportViolation) -> None:
    if args.resource_type == APPLICATION:
        _check_requested(args.props, report)
    elif args.resource_type == DELEGATED_GRANT:
        wanted = [list(api.scopes) for apis in PROFILES.values() for api in apis]
        if list(args.props.get("claimValues") or []) not in wanted:
            report(f"the consent grant holds {args.props.get('claimValues')}, not one API's scopes of a "
                   "PresenceSync profile", None)
    elif args.resource_type == APP_ROLE_ASSIGNMENT:
        roles = {i for (_, kind, _), i in PUBLISHED_IDS.items() if kind == "Role"}
        if args.props.get("appRoleId") not in roles:
            report(f"app role {args.props.get('appRoleId')} is not an application permission of a profile", None)


def _check_requested(application: Mapping[str, Any], report: ReportViolation) -> None:
    profile = profile_of(application)
    apis = {api.app_id: api for api in PROFILES[profile]}
    requested = {r.get("resourceAppId"): r.get("resourceAccesses") or []
                 for r in application.get("requiredResourceAccesses") or []}
    if set(requested) != set(apis):
        report(f"the app requests APIs {sorted(requested)}; profile {profile} requests exactly {sorted(apis)}", None)
        return
    for app_id, accesses in requested.items():
        api = apis[app_id]
        for kind, names in (("Scope", api.scopes), ("Role", api.roles)):
            got = sorted(a.get("id") for a in accesses if a.get("type") == kind)
            published = published_ids(api, kind)
            if len(got) != len(names) or (published is not None and got != sorted(published)):
                report(f"the app requests {kind} permissions {got} of {api.api}; profile {profile} requests "
                       f"exactly {', '.join(names) or 'none'}", None)


def deployer_among_owners(deployer: Callable[[], str]) -> Validate:
    """The deployer must own the application, or the provider would remove it (facts.md)."""
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


def policies(deployer: Callable[[], str]) -> list[ResourceValidationPolicy]:
    mandatory, advisory = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY
    return [
        ResourceValidationPolicy(
            "single-tenant-audience", "Applications are single-tenant unless explicitly allowed.",
            single_tenant_audience, mandatory, PolicyConfigSchema(
                {"allowMultiTenant": {"type": "boolean", "default": False}})),
        ResourceValidationPolicy("no-personal-accounts", "Never a personal-account audience.",
                                 no_personal_accounts, mandatory),
        ResourceValidationPolicy("secret-at-most-two-years", "Client secrets live at most two years.",
                                 secret_at_most_two_years, mandatory),
        ResourceValidationPolicy("secret-never-expires", "Warns about a secret that never expires.",
                                 secret_never_expires, advisory),
        ResourceValidationPolicy("implicit-grant-only-for-ucwa", "Implicit grant only where the profile needs it.",
                                 implicit_grant_only_for_ucwa, mandatory),
        ResourceValidationPolicy("public-client-only-for-ucwa", "Public client only where the profile needs it.",
                                 public_client_only_for_ucwa, advisory),
        ResourceValidationPolicy("expected-permissions-only", "Only the permissions a profile requests.",
                                 expected_permissions_only, mandatory),
        ResourceValidationPolicy("deployer-among-owners", "The deployer owns the application.",
                                 deployer_among_owners(deployer), mandatory),
    ]
