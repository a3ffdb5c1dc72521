"""Profile `graph` under Pulumi's mock engine: Teams presence through Microsoft Graph."""

from __future__ import annotations

import pytest
from conftest import GRAPH_ROLES, GRAPH_SCOPES, GRAPH_SP, SECRET, stack_config
from pulumi import RunError

from presencesync.offline_plan import ResourceApi, SecretValue, TenantFacts, run_program
from presencesync.permissions import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE

APP = "azuread:index/application:Application"
GRANT = "azuread:index/servicePrincipalDelegatedPermissionGrant:ServicePrincipalDelegatedPermissionGrant"
ROLE = "azuread:index/appRoleAssignment:AppRoleAssignment"
PASSWORD_TYPE = "azuread:index/applicationPassword:ApplicationPassword"


def test_requests_graph_application_and_delegated_permissions_only(plan):
    result = plan(profile="graph")
    accesses = result.one(APP).inputs["requiredResourceAccesses"]
    assert [a["resourceAppId"] for a in accesses] == [MICROSOFT_GRAPH]
    assert accesses[0]["resourceAccesses"] == [
        {"id": GRAPH_SCOPES["Presence.Read.All"], "type": "Scope"},
        {"id": GRAPH_SCOPES["User.Read"], "type": "Scope"},
        {"id": GRAPH_ROLES["Presence.ReadWrite.All"], "type": "Role"},
        {"id": GRAPH_ROLES["User.ReadBasic.All"], "type": "Role"}]
    looked_up = {a["clientId"] for t, a in result.invokes if t.endswith("getServicePrincipal")}
    assert looked_up == {MICROSOFT_GRAPH}
    assert SKYPE_FOR_BUSINESS_ONLINE not in str(result.resources)


def test_admin_consent_is_app_role_assignments_plus_one_delegated_grant(plan):
    result = plan(profile="graph")
    service_principal = result.one("azuread:index/servicePrincipal:ServicePrincipal")
    roles = result.of_type(ROLE)
    assert sorted(r.inputs["appRoleId"] for r in roles) == sorted(
        [GRAPH_ROLES["Presence.ReadWrite.All"], GRAPH_ROLES["User.ReadBasic.All"]])
    assert {(r.inputs["principalObjectId"], r.inputs["resourceObjectId"]) for r in roles} == \
        {(service_principal.id, GRAPH_SP)}
    grant = result.one(GRANT)
    assert grant.inputs["claimValues"] == ["Presence.Read.All", "User.Read"]
    for mode in ("hook", "manual"):
        assert plan(profile="graph", consent=mode).of_type(ROLE) == []


def test_no_implicit_grant_and_no_public_client_unless_asked(plan):
    app = plan(profile="graph").one(APP).inputs
    assert app["web"]["implicitGrant"] == {"accessTokenIssuanceEnabled": False, "idTokenIssuanceEnabled": False}
    assert app["fallbackPublicClientEnabled"] is False
    assert plan(profile="graph", publicClient="true").one(APP).inputs["fallbackPublicClientEnabled"] is True


def test_novus_output_has_the_fields_graph_needs_with_secrets_secret(plan):
    novus = plan(profile="graph").outputs["novus"]
    assert isinstance(novus, SecretValue)
    assert set(novus.value) == {"tenantId", "clientId", "clientSecret", "userName", "password", "syncUsers"}


def test_a_role_the_tenant_lacks_stops_the_program(facts):
    graph = facts.resource_apis[MICROSOFT_GRAPH]
    lacking = TenantFacts(**{**facts.__dict__, "resource_apis": {
        MICROSOFT_GRAPH: ResourceApi(graph.object_id, graph.scopes, {"User.ReadBasic.All": "x"})}})
    with pytest.raises(RunError, match=r"offers no application permission Presence\.ReadWrite\.All"):
        run_program(stack_config(profile="graph"), lacking, secret_keys=SECRET)
