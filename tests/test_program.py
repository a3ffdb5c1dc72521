"""The Pulumi program under Pulumi's mock engine: each numbered item of the program's issue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import (
    DEPLOYER,
    GRAPH_SCOPES,
    GRAPH_SP,
    PASSWORD,
    SKYPE_SCOPES,
    SKYPE_SP,
    SYNC_USER_ID,
    TENANT_ID,
    stack_config,
)
from pulumi import RunError

from presencesync.offline_plan import ResourceApi, SecretValue, TenantFacts, run_program
from presencesync.permissions import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE

APP = "azuread:index/application:Application"
SP = "azuread:index/servicePrincipal:ServicePrincipal"
GRANT = "azuread:index/servicePrincipalDelegatedPermissionGrant:ServicePrincipalDelegatedPermissionGrant"
PASSWORD_TYPE = "azuread:index/applicationPassword:ApplicationPassword"
USER = "azuread:index/user:User"


def test_application_defaults(plan):
    app = plan().one(APP)
    assert app.inputs["displayName"] == "PresenceSync"
    assert app.inputs["signInAudience"] == "AzureADMyOrg"
    assert app.inputs["preventDuplicateNames"] is True
    assert app.parent.endswith("presencesync:index:Tenant::dev")


def test_multitenant_audience_is_allowed(plan):
    assert plan(signInAudience="AzureADMultipleOrgs").one(APP).inputs["signInAudience"] == "AzureADMultipleOrgs"


def test_permissions_are_resolved_by_name_from_the_tenant(plan):
    accesses = {a["resourceAppId"]: a["resourceAccesses"] for a in plan().one(APP).inputs["requiredResourceAccesses"]}
    assert accesses[SKYPE_FOR_BUSINESS_ONLINE] == [
        {"id": SKYPE_SCOPES["Contacts.ReadWrite"], "type": "Scope"},
        {"id": SKYPE_SCOPES["User.ReadWrite"], "type": "Scope"}]
    assert accesses[MICROSOFT_GRAPH] == [{"id": GRAPH_SCOPES["User.Read"], "type": "Scope"}]


def test_resource_service_principals_are_looked_up_never_managed(plan):
    result = plan()
    looked_up = {a["clientId"] for t, a in result.invokes if t.endswith("getServicePrincipal")}
    assert looked_up == {SKYPE_FOR_BUSINESS_ONLINE, MICROSOFT_GRAPH}
    managed = [r.inputs.get("clientId") for r in result.of_type(SP)]
    assert SKYPE_FOR_BUSINESS_ONLINE not in managed and MICROSOFT_GRAPH not in managed
    assert len(managed) == 1


def test_a_scope_the_tenant_lacks_stops_the_program(facts):
    lacking = TenantFacts(**{**facts.__dict__, "resource_apis": {
        SKYPE_FOR_BUSINESS_ONLINE: ResourceApi(SKYPE_SP, {"User.ReadWrite": SKYPE_SCOPES["User.ReadWrite"]}),
        MICROSOFT_GRAPH: facts.resource_apis[MICROSOFT_GRAPH]}})
    with pytest.raises(RunError, match=r"offers no delegated permission Contacts\.ReadWrite"):
        run_program(stack_config(), lacking)


def test_web_platform_and_implicit_grant(plan):
    web = plan(redirectUris=["https://novus.contoso.com/cb", "http://localhost:5000/cb"],
               logoutUrl="https://novus.contoso.com/logout").one(APP).inputs["web"]
    assert web["redirectUris"] == ["https://novus.contoso.com/cb", "http://localhost:5000/cb"]
    assert web["logoutUrl"] == "https://novus.contoso.com/logout"
    assert web["implicitGrant"] == {"accessTokenIssuanceEnabled": True, "idTokenIssuanceEnabled": True}
    off = plan(implicitGrant={"accessTokens": False}).one(APP).inputs["web"]["implicitGrant"]
    assert off == {"accessTokenIssuanceEnabled": False, "idTokenIssuanceEnabled": True}


def test_public_client(plan):
    assert plan().one(APP).inputs["fallbackPublicClientEnabled"] is True
    assert plan(publicClient="false").one(APP).inputs["fallbackPublicClientEnabled"] is False


def test_service_principal_for_the_application(plan):
    result = plan()
    assert result.one(SP).inputs["clientId"] == result.outputs["novus"].value["clientId"]


def test_resource_consent_declares_one_grant_per_api_with_exact_scopes(plan):
    result = plan()
    grants = {g.inputs["resourceServicePrincipalObjectId"]: g for g in result.of_type(GRANT)}
    assert set(grants) == {SKYPE_SP, GRAPH_SP}
    assert grants[SKYPE_SP].inputs["claimValues"] == ["Contacts.ReadWrite", "User.ReadWrite"]
    assert grants[GRAPH_SP].inputs["claimValues"] == ["User.Read"]
    assert all(g.inputs["servicePrincipalObjectId"] == result.outputs["servicePrincipalObjectId"]
               and "userObjectId" not in g.inputs for g in grants.values())


@pytest.mark.parametrize("mode", ["hook", "manual"])
def test_hook_and_manual_consent_declare_no_grants_but_export_the_url(plan, mode):
    result = plan(consent=mode)
    assert result.of_type(GRANT) == []
    client_id = result.outputs["novus"].value["clientId"]
    assert result.outputs["adminConsentUrl"] == \
        f"https://login.microsoftonline.com/{TENANT_ID}/adminconsent?client_id={client_id}"


def test_national_cloud_consent_url(plan):
    assert plan(**{"azuread:environment": "china"}).outputs["adminConsentUrl"].startswith(
        f"https://login.chinacloudapi.cn/{TENANT_ID}/adminconsent?client_id=")


def _day(offset_years: int) -> str:
    today = datetime.now(UTC).date()
    return f"{today.replace(year=today.year + offset_years).isoformat()}T00:00:00Z"


@pytest.mark.parametrize(("expiry", "end"), [("1y", lambda: _day(1)), ("2y", lambda: _day(2)),
                                             ("never", lambda: "2100-12-31T00:00:00Z"),
                                             ("2031-05-17T12:30:00+02:00", lambda: "2031-05-17T10:30:00Z")])
def test_client_secret_end_date(plan, expiry, end):
    secret = plan(secretExpiry=expiry).one(PASSWORD_TYPE)
    assert secret.inputs["endDate"] == end()
    assert secret.inputs["rotateWhenChanged"] == {"secretExpiry": expiry}


def test_client_secret_is_stable_between_runs(plan):
    """A second run must not replace the secret: its inputs are the same, and the relative end date,
    which moves with the clock, is ignored after creation; only a change of secretExpiry replaces it."""
    first, second = plan().one(PASSWORD_TYPE), plan().one(PASSWORD_TYPE)
    assert first.inputs == second.inputs
    assert first.ignore_changes == ["endDate"]
    assert first.inputs["applicationId"].startswith("/applications/")
    assert plan(secretExpiry="1y").one(PASSWORD_TYPE).inputs["rotateWhenChanged"] != first.inputs["rotateWhenChanged"]


def test_owners_are_sync_user_deployer_and_extras_without_duplicates(plan):
    extra = "9f9f9f9f-7777-4777-8777-777777777777"
    result = plan(owners=[extra, DEPLOYER.upper()])
    expected = sorted({DEPLOYER, SYNC_USER_ID, extra})
    assert result.one(APP).inputs["owners"] == expected
    assert result.one(SP).inputs["owners"] == expected


def test_existing_sync_user_is_looked_up_by_upn(plan):
    result = plan()
    assert ("azuread:index/getUser:getUser", {"userPrincipalName": "sync@contoso.com"}) in result.invokes
    assert result.of_type(USER) == []


def test_created_sync_user_with_group_licence(plan):
    sku = "18181a46-0d4e-45cd-891e-60aabd171b4e"
    result = plan(syncUser={"userPrincipalName": "sync@contoso.com", "create": True,
                            "usageLocation": "DK", "licenseSkuId": sku})
    user = result.one(USER)
    assert user.inputs["userPrincipalName"] == "sync@contoso.com"
    assert user.inputs["password"] == SecretValue(PASSWORD)
    assert user.inputs["disablePasswordExpiration"] is True
    assert user.inputs["forcePasswordChange"] is False
    assert user.inputs["usageLocation"] == "DK"
    group = result.one("azuread:index/group:Group")
    assert group.inputs["securityEnabled"] is True
    assert group.inputs["members"] == [user.id]
    assert user.id in result.one(APP).inputs["owners"]
    licence = result.one("azuread:index/groupLicense:GroupLicense")
    assert licence.inputs == {"groupObjectId": group.id, "skuId": sku}
    assert not any(t.endswith("getUser") for t, _ in result.invokes)


def test_created_sync_user_licensed_elsewhere_has_no_group(plan):
    result = plan(syncUser={"userPrincipalName": "sync@contoso.com", "create": True, "licensedElsewhere": True})
    assert len(result.of_type(USER)) == 1
    assert result.of_type("azuread:index/groupLicense:GroupLicense") == []


def test_novus_output_carries_the_five_values_with_secrets_secret(plan):
    outputs = plan().outputs
    # Secret as a whole: pipelines (pulumi/actions) mask only outputs that are wholly secret.
    assert isinstance(outputs["novus"], SecretValue)
    novus = outputs["novus"].value
    assert set(novus) == {"tenantId", "clientId", "clientSecret", "userName", "password"}
    assert novus["tenantId"] == "contoso.onmicrosoft.com"
    assert novus["userName"] == "sync@contoso.com"
    assert novus["password"] == PASSWORD
    assert outputs["directoryTenantId"] == TENANT_ID
    assert set(outputs) == {"novus", "directoryTenantId", "applicationObjectId", "servicePrincipalObjectId",
                            "clientSecretEndDate", "adminConsentUrl"}
    assert outputs["clientSecretEndDate"] == _day(2)


def test_tenant_domain_setting_replaces_the_lookup(plan):
    result = plan(tenantDomain="zylinc.ninja")
    assert result.outputs["novus"].value["tenantId"] == "zylinc.ninja"
    assert not any(t.endswith("getDomains") for t, _ in result.invokes)
    assert ("azuread:index/getDomains:getDomains", {"onlyDefault": True}) in plan().invokes


def test_protect_guards_application_and_service_principal(plan):
    result = plan(protect="true")
    assert result.one(APP).protect and result.one(SP).protect
    assert not plan().one(APP).protect


def test_bad_config_stops_the_program_before_any_resource(facts):
    config = stack_config(consent="always", secretExpiry="2001-01-01")
    with pytest.raises(RunError) as raised:
        run_program(config, facts)
    assert "presencesync:consent: 'always' is not one of resource, hook, manual" in str(raised.value)
    assert "presencesync:secretExpiry" in str(raised.value)


def test_future_dates_only(plan):
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert plan(secretExpiry=tomorrow).one(PASSWORD_TYPE).inputs["endDate"] == tomorrow


def test_every_resource_reports_its_changes_and_the_secret_waits_only_for_the_application(plan):
    result = plan()
    secret = result.one(PASSWORD_TYPE)
    assert all(r.after_create_hooks == r.after_update_hooks == ["tenant-changed"]
               for r in result.resources if r.type.startswith("azuread:"))
    assert {urn.rsplit("::", 1)[-1] for urn in secret.depends_on} == {"application"}
    assert plan(postDeploy="false").one(PASSWORD_TYPE).after_create_hooks == []
