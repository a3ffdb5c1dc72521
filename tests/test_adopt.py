"""`adopt` against the loopback Graph fake: a registration made by hand becomes a `pulumi import` file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import (
    DEPLOYER_APP,
    DEPLOYER_SECRET,
    GRAPH_ROLES,
    GRAPH_SCOPES,
    SECURE,
    SKYPE_SCOPES,
    TENANT_ID,
    deployer_env,
    run,
)
from fake_entra import App, FakeEntra

from presencesync.permissions import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE

HAND_MADE = "b2b2b2b2-1234-4234-8234-123412341234"
TENANT = "presencesync:index:Tenant"


@pytest.fixture
def tenant(fake: FakeEntra) -> FakeEntra:
    d = fake.directory
    d.add_app(App(DEPLOYER_APP, {DEPLOYER_SECRET}, display_name="deployer"))
    d.add_resource_api(SKYPE_FOR_BUSINESS_ONLINE, SKYPE_SCOPES)
    d.add_resource_api(MICROSOFT_GRAPH, GRAPH_SCOPES, GRAPH_ROLES)
    d.add_app(App(HAND_MADE, {"secret-typed-in-the-portal"}, end_date="2027-03-01T00:00:00Z"))
    return fake


def adopt(fake: FakeEntra, tmp_path: Path, *args: str, **config: object):
    stack = tmp_path / "Pulumi.customer-a.yaml"
    stack.write_text(json.dumps({"config": {"azuread:tenantId": TENANT_ID, "presencesync:syncUser": {"userPrincipalName": "sync@contoso.com"},
                                            "presencesync:syncUserPassword": SECURE,
                                            **{f"presencesync:{k}": v for k, v in config.items()}}}))
    return run("adopt", "--stack", "customer-a", "--project-dir", str(tmp_path), *args, env=deployer_env(fake))


def test_a_hand_made_ucwa_registration_becomes_an_import_file(tenant, tmp_path, plan):
    d = tenant.directory
    skype = d.add_grant(HAND_MADE, SKYPE_FOR_BUSINESS_ONLINE, "Contacts.ReadWrite User.ReadWrite")
    graph = d.add_grant(HAND_MADE, MICROSOFT_GRAPH, "User.Read")
    done = adopt(tenant, tmp_path)
    assert done.returncode == 0, done.stderr
    target = tmp_path / "adopt.customer-a.json"
    app, sp = d.apps[HAND_MADE], d.service_principals[HAND_MADE]
    grant = "azuread:index/servicePrincipalDelegatedPermissionGrant:ServicePrincipalDelegatedPermissionGrant"
    assert json.loads(target.read_text()) == {"resources": [
        {"type": TENANT, "name": "customer-a", "component": True},
        {"type": "azuread:index/application:Application", "name": "application",
         "id": f"/applications/{app.object_id}", "parent": "customer-a"},
        {"type": "azuread:index/servicePrincipal:ServicePrincipal", "name": "service-principal",
         "id": f"/servicePrincipals/{sp['id']}", "parent": "customer-a"},
        {"type": grant, "name": "consent-skype-for-business-online", "id": f"/oauth2PermissionGrants/{skype['id']}",
         "parent": "customer-a"},
        {"type": grant, "name": "consent-microsoft-graph", "id": f"/oauth2PermissionGrants/{graph['id']}",
         "parent": "customer-a"}]}
    assert done.stdout.strip() == (f"pulumi import --file {target} --stack customer-a --generate-code=false "
                                   "--protect=false")
    assert "client secrets cannot be imported: pulumi up adds a new one" in done.stderr
    assert "made by hand ending 2027-03-01T00:00:00Z" in done.stderr
    assert d.writes() == []  # adopt only reads
    assert "secret-typed-in-the-portal" not in done.stdout + done.stderr + target.read_text()
    # the names and types are the program's own, so the import lands on what the program declares
    declared = {(r.type, r.name) for r in plan().resources}
    assert {(r["type"], r["name"]) for r in json.loads(target.read_text())["resources"]} <= \
        declared | {(TENANT, "customer-a")}


def test_graph_profile_imports_the_app_role_assignments(tenant, tmp_path, plan):
    d = tenant.directory
    d.add_grant(HAND_MADE, MICROSOFT_GRAPH, "Presence.Read.All User.Read")
    presence = d.add_role_assignment(HAND_MADE, MICROSOFT_GRAPH, "Presence.ReadWrite.All")
    done = adopt(tenant, tmp_path, profile="graph")
    assert done.returncode == 0, done.stderr
    resources = json.loads((tmp_path / "adopt.customer-a.json").read_text())["resources"]
    roles = [r for r in resources if r["type"] == "azuread:index/appRoleAssignment:AppRoleAssignment"]
    graph_sp = d.service_principals[MICROSOFT_GRAPH]["id"]
    assert roles == [{"type": "azuread:index/appRoleAssignment:AppRoleAssignment",
                      "name": "consent-microsoft-graph-presence-readwrite-all",
                      "id": f"/servicePrincipals/{graph_sp}/appRoleAssignedTo/{presence['id']}", "parent": "customer-a"}]
    assert "application permission User.ReadBasic.All is not granted yet: pulumi up grants it" in done.stderr
    declared = {(r.type, r.name) for r in plan(profile="graph").resources}
    assert {(r["type"], r["name"]) for r in roles} <= declared


def test_hook_consent_imports_no_grants_and_a_missing_service_principal_is_said(tenant, tmp_path):
    tenant.directory.add_grant(HAND_MADE, MICROSOFT_GRAPH, "User.Read")
    done = adopt(tenant, tmp_path, consent="hook")
    assert done.returncode == 0, done.stderr
    names = [r["name"] for r in json.loads((tmp_path / "adopt.customer-a.json").read_text())["resources"]]
    assert names == ["customer-a", "application", "service-principal"]
    del tenant.directory.service_principals[HAND_MADE]
    done = adopt(tenant, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "the application has no service principal yet: pulumi up creates it" in done.stderr


def test_an_application_that_does_not_exist(tenant, tmp_path):
    done = adopt(tenant, tmp_path, "--display-name", "Novus Presence")
    assert done.returncode == 1
    assert done.stderr.strip() == ("error: no application named 'Novus Presence' in this tenant; pass the name it "
                                   "has with --display-name (Entra admin center, App registrations)")
    assert not (tmp_path / "adopt.customer-a.json").exists()


def test_two_applications_with_the_same_name(tenant, tmp_path):
    tenant.directory.add_app(App("c3c3c3c3-1234-4234-8234-123412341234", {"other"}))
    done = adopt(tenant, tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("error: 2 applications are named 'PresenceSync' (client IDs "
                                  f"{HAND_MADE}, c3c3c3c3-1234-4234-8234-123412341234)")
    assert "Traceback" not in done.stderr and not (tmp_path / "adopt.customer-a.json").exists()


def test_without_deployer_credentials(tenant, tmp_path):
    stack = tmp_path / "Pulumi.customer-a.yaml"
    stack.write_text(json.dumps({"config": {"azuread:tenantId": TENANT_ID, "presencesync:syncUser": {"userPrincipalName": "sync@contoso.com"},
                                            "presencesync:syncUserPassword": SECURE}}))
    done = run("adopt", "--stack", "customer-a", "--project-dir", str(tmp_path), env=tenant.env())
    assert done.returncode == 1 and "ARM_CLIENT_ID" in done.stderr and "Traceback" not in done.stderr
