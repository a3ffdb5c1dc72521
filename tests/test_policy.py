"""The policy pack's policies, called one resource at a time: compliant inputs come from the real
program under the mock engine (both profiles), non-compliant ones are those inputs altered. The pack
itself, served over gRPC as the engine runs it, is in test_policy_pack.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import DEPLOYER, GRAPH_ROLES, GRAPH_SCOPES, ROOT, SKYPE_SCOPES, stack_config
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs

from presencesync import policies
from presencesync.config import load_settings
from presencesync.offline_plan import Plan
from presencesync.permissions import PROFILES
from presencesync.preflight_findings import Reads
from presencesync.preflight_secrets import password_restrictions

APPLICATION, PASSWORD = policies.APPLICATION, policies.PASSWORD
GRAPH_APP = "00000003-0000-0000-c000-000000000000"


def validate(check: policies.Validate, resource_type: str, props: dict[str, Any],
             config: dict[str, Any] | None = None) -> list[str]:
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    args = ResourceValidationArgs(resource_type, props, f"urn:pulumi:dev::presencesync::{resource_type}::x", "x",
                                  options, None, config or {})
    found: list[str] = []
    check(args, lambda message, urn=None: found.append(message))
    return found


TENANT_IDS = {"Scope": {**SKYPE_SCOPES, **GRAPH_SCOPES}, "Role": GRAPH_ROLES}  # the test tenant's, by name


def tenant_ids(profile: str) -> dict[tuple[str, str], frozenset[str]]:
    """As the pack reads them from the tenant: each API's permission IDs, by name."""
    return {(api.app_id, kind): frozenset(TENANT_IDS[kind][name] for name in names)
            for api in PROFILES[profile] for kind, names in (("Scope", api.scopes), ("Role", api.roles))}


EXPECTED = policies.expected_permissions_only(tenant_ids)


def every_policy(plan: Plan) -> list[str]:
    checks = [p.validate for p in policies.policies(lambda: DEPLOYER, tenant_ids)]
    return [message for r in plan.resources for check in checks for message in validate(check, r.type, r.inputs)]


@pytest.mark.parametrize("overrides", [{}, {"profile": "graph"}, {"profile": "graph", "secretRotationDays": "180"},
                                       {"consent": "hook"}, {"secretExpiry": "1y"}])
def test_the_program_complies(plan, overrides):
    assert every_policy(plan(**overrides)) == []


def app(plan, **overrides: Any) -> dict[str, Any]:
    return dict(plan(**overrides).one(APPLICATION).inputs)


def test_single_tenant_audience_unless_allowed(plan):
    multi = app(plan, signInAudience="AzureADMultipleOrgs")
    assert validate(policies.single_tenant_audience, APPLICATION, app(plan)) == []
    assert "single-tenant" in validate(policies.single_tenant_audience, APPLICATION, multi)[0]
    assert validate(policies.single_tenant_audience, APPLICATION, multi, {"allowMultiTenant": True}) == []


def test_never_a_personal_account_audience(plan):
    personal = {**app(plan), "signInAudience": "AzureADandPersonalMicrosoftAccount"}
    assert "personal Microsoft accounts" in validate(policies.no_personal_accounts, APPLICATION, personal)[0]
    assert validate(policies.no_personal_accounts, APPLICATION, personal, {"allowMultiTenant": True})


def test_secret_lifetime(plan):
    two_years = dict(plan().one(PASSWORD).inputs)
    assert validate(policies.secret_at_most_two_years, PASSWORD, two_years) == []
    long = {**two_years, "endDate": "2040-01-01T00:00:00Z"}
    assert "more than two years" in validate(policies.secret_at_most_two_years, PASSWORD, long)[0]
    # A secret that never expires outlives two years too: the same rule, the same (mandatory) level.
    never = dict(plan(secretExpiry="never").one(PASSWORD).inputs)
    assert "never expires" in validate(policies.secret_at_most_two_years, PASSWORD, never)[0]
    assert validate(policies.secret_at_most_two_years, PASSWORD, never, {"allowLongLived": True}) == []
    assert validate(policies.secret_at_most_two_years, PASSWORD, long, {"allowLongLived": True}) == []
    rotated = [dict(r.inputs) for r in plan(secretRotationDays="365").of_type(PASSWORD)]
    assert all(validate(policies.secret_at_most_two_years, PASSWORD, r) == [] for r in rotated)
    # The provider's deprecated endDateRelative (a Go duration) must not get around the limit.
    relative = {k: v for k, v in two_years.items() if k != "endDate"}
    five_years = validate(policies.secret_at_most_two_years, PASSWORD, {**relative, "endDateRelative": "43800h"})
    assert five_years and "lives 1825 days" in five_years[0]
    assert validate(policies.secret_at_most_two_years, PASSWORD, {**relative, "endDateRelative": "8760h0m0s"}) == []


def test_implicit_grant_and_public_client_only_where_the_profile_needs_them(plan):
    ucwa, graph = app(plan), app(plan, profile="graph")
    assert validate(policies.implicit_grant_only_for_ucwa, APPLICATION, ucwa) == []  # ucwa's guide turns it on
    graph_with_grant = {**graph, "web": {**graph["web"], "implicitGrant": {"accessTokenIssuanceEnabled": True,
                                                                            "idTokenIssuanceEnabled": False}}}
    assert "implicit grant is on" in validate(policies.implicit_grant_only_for_ucwa, APPLICATION, graph_with_grant)[0]
    assert validate(policies.public_client_only_for_ucwa, APPLICATION, ucwa) == []
    public_graph = app(plan, profile="graph", publicClient="true")
    assert "public client" in validate(policies.public_client_only_for_ucwa, APPLICATION, public_graph)[0]


def test_only_the_expected_permissions(plan):
    graph = app(plan, profile="graph")
    extra = {**graph, "requiredResourceAccesses": [{**graph["requiredResourceAccesses"][0], "resourceAccesses": [
        *graph["requiredResourceAccesses"][0]["resourceAccesses"],
        {"id": "19dbc75e-c2e2-444c-a770-ec69d8559fc7", "type": "Role"}]}]}  # Directory.ReadWrite.All
    assert "Role permissions" in validate(EXPECTED, APPLICATION, extra)[0]
    ucwa = app(plan)
    other_api = {**ucwa, "requiredResourceAccesses": [*ucwa["requiredResourceAccesses"], {
        "resourceAppId": "00000002-0000-0ff1-ce00-000000000000", "resourceAccesses": []}]}
    assert "requests APIs" in validate(EXPECTED, APPLICATION, other_api)[0]
    grant = dict(plan().of_type(policies.DELEGATED_GRANT)[0].inputs)
    assert validate(EXPECTED, policies.DELEGATED_GRANT, grant) == []
    reordered = {**grant, "claimValues": list(reversed(grant["claimValues"]))}  # claim values are a set
    assert validate(EXPECTED, policies.DELEGATED_GRANT, reordered) == []
    wider = {**grant, "claimValues": [*grant["claimValues"], "Meetings.ReadWrite"]}
    assert validate(EXPECTED, policies.DELEGATED_GRANT, wider) == [
        f"the consent grant holds {' '.join(sorted(wider['claimValues']))}, not one API's scopes of a "
        "PresenceSync profile"]
    role = dict(plan(profile="graph").of_type(policies.APP_ROLE_ASSIGNMENT)[0].inputs)
    assert validate(EXPECTED, policies.APP_ROLE_ASSIGNMENT, role) == []
    other_role = {**role, "appRoleId": "19dbc75e-c2e2-444c-a770-ec69d8559fc7"}
    assert validate(EXPECTED, policies.APP_ROLE_ASSIGNMENT, other_role)


def test_a_skype_scope_swapped_for_another_of_the_same_count_is_caught(plan):
    """The Skype IDs are not published: the policy compares them with the tenant's, read by name."""
    ucwa = app(plan)
    skype = next(r for r in ucwa["requiredResourceAccesses"] if r["resourceAppId"] != GRAPH_APP)
    swapped = [{"id": SKYPE_SCOPES["Meetings.ReadWrite"] if a["id"] == SKYPE_SCOPES["User.ReadWrite"] else a["id"],
                "type": a["type"]} for a in skype["resourceAccesses"]]
    altered = {**ucwa, "requiredResourceAccesses": [
        {**r, "resourceAccesses": swapped} if r is skype else r for r in ucwa["requiredResourceAccesses"]]}
    assert "Scope permissions" in validate(EXPECTED, APPLICATION, altered)[0]
    assert validate(EXPECTED, APPLICATION, ucwa) == []

    def no_credentials(profile: str) -> dict:
        raise RuntimeError("no credentials for Microsoft Graph")

    assert "cannot read the permission IDs from the tenant" in validate(
        policies.expected_permissions_only(no_credentials), APPLICATION, ucwa)[0]


def test_the_deployer_among_owners(plan):
    application = app(plan)
    check = policies.deployer_among_owners(lambda: DEPLOYER.upper())
    assert validate(check, APPLICATION, application) == []
    without = {**application, "owners": [o for o in application["owners"] if o != DEPLOYER]}
    assert "is not among the application's owners" in validate(check, APPLICATION, without)[0]

    def no_credentials() -> str:
        raise RuntimeError("no credentials for Microsoft Graph")

    assert "cannot tell who deploys" in validate(policies.deployer_among_owners(no_credentials), APPLICATION,
                                                 application)[0]


def test_the_pack_entry_point_builds_the_pack_only_there():
    source = (ROOT / "policy" / "__main__.py").read_text()
    assert "PolicyPack(" in source and "PolicyPack(" not in (ROOT / "presencesync" / "policies.py").read_text()
    names = [p.name for p in policies.policies(lambda: DEPLOYER, tenant_ids)]
    assert len(names) == len(set(names)) == 7


@pytest.mark.parametrize("overrides", [{"secretExpiry": "1y"}, {"secretExpiry": "2y"}, {"secretExpiry": "never"},
                                       {"secretExpiry": "3.5 years out"}, {"secretRotationDays": "365"},
                                       {"secretRotationDays": "31"}])
def test_the_pack_and_the_preflight_count_a_lifetime_alike(plan, overrides):
    """The pack's two-year rule and the preflight's lifetime check against a tenant limit of P2Y agree."""
    now = datetime.now(UTC)
    far = (now + timedelta(days=3 * 365 + 182)).strftime("%Y-%m-%dT00:00:00Z")
    overrides = {k: far if v == "3.5 years out" else v for k, v in overrides.items()}
    pack_refuses = any(validate(policies.secret_at_most_two_years, PASSWORD, dict(r.inputs))
                       for r in plan(**overrides).of_type(PASSWORD))
    limit = {"id": "p", "displayName": "two years", "isEnabled": True, "restrictions": {"passwordCredentials": [
        {"restrictionType": "passwordLifetime", "maxLifetime": "P2Y", "restrictForAppsCreatedAfterDateTime": None}]}}
    settings = load_settings(stack_config(**overrides), now=now)
    preflight_refuses = bool(password_restrictions(settings, Reads({}, []), [limit], None, now))
    assert pack_refuses == preflight_refuses == (overrides.get("secretExpiry") in ("never", far))
