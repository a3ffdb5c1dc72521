"""scripts/bootstrap.sh run for real: the real Azure CLI (azure-cli 2.91 in .cache/azure-cli) against the
loopback fake, Graph from fake_entra.py and Resource Manager from fake_arm.py, run twice in a partner's
repository with two customer stacks. The second run must write nothing: every Graph and Resource Manager
request that could change something (POST, PUT, PATCH, DELETE) is counted.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import AZ, AZ_CLI_APP, ROOT, az_signed_in
from fake_arm import BUILT_IN_ROLES
from fake_entra import App, FakeEntra, Fault, User

from presencesync.bootstrap_plan import PREVIEW_ROLES, SYNC_USER_CREATION, deployer_roles
from presencesync.permissions import MICROSOFT_GRAPH

KEY_VAULT_SECRET = {"secure": "v1:yNulcsuiSG9uBpaB:mG4FbUFZOtPVJ1HrQUbeubzZkrOjd8mboMV1Kux3jDBxu1l32RM="}  # v1: with encryptedkey

ADMIN = User("admin@partner.example", "Adm1n-Pa55word!")
SUBSCRIPTION = "5b0c1e8f-7d1a-4c52-9f8e-3a6d2b4c8e10"
CUSTOMERS = {"customer-a": "11111111-1111-4111-8111-111111111111",
             "customer-b": "22222222-2222-4222-8222-222222222222"}
ADMIN_GROUP = "33333333-3333-4333-8333-333333333333"
# Graph's application permissions, named; the IDs are the fake's own (the script must read them by name).
GRAPH_APP_ROLES = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, name)) for name in (
    "Application.ReadWrite.All", "User.Read.All", "Domain.Read.All", "Policy.Read.All", "DelegatedPermissionGrant.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All", *SYNC_USER_CREATION, *PREVIEW_ROLES, "Presence.ReadWrite.All", "Mail.Send")}
ARGS = ("--location", "westeurope", "--storage-account", "partnerstate", "--key-vault", "partner-kv",
        "--github", "partner/gitops", "--admin-group", ADMIN_GROUP,
        "--ado-issuer", "https://vstoken.dev.azure.com/0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
        "--ado-subject", "sc://partner/gitops/presencesync-deployer",
        "--ado-preview-subject", "sc://partner/gitops/presencesync-preview")

pytestmark = [pytest.mark.az, pytest.mark.skipif(not AZ.exists(), reason="the Azure CLI is not in "
                                                  ".cache/azure-cli (bash scripts/test_az.sh installs it)")]


@pytest.fixture
def partner(fake: FakeEntra, tmp_path: Path):
    """The partner's tenant and subscription, signed in with az, and a GitOps repository with two
    customer stacks (one ucwa, one graph creating its sync user)."""
    d = fake.directory
    d.add_app(App(AZ_CLI_APP, set(), first_party=True), with_service_principal=False)
    d.users[ADMIN.upn] = ADMIN
    d.add_resource_api(MICROSOFT_GRAPH, {"User.Read": str(uuid.uuid4())}, GRAPH_APP_ROLES)
    d.arm.add_subscription(SUBSCRIPTION)
    env = az_signed_in(fake, tmp_path, ADMIN.upn, ADMIN.password)
    repo = tmp_path / "gitops"
    (repo / "scripts").mkdir(parents=True)
    (repo / "scripts" / "bootstrap.sh").symlink_to(ROOT / "scripts" / "bootstrap.sh")
    for shared in (".venv", "presencesync", "requirements.lock", "Pulumi.yaml"):
        (repo / shared).symlink_to(ROOT / shared)
    for (name, tenant), profile in zip(CUSTOMERS.items(), ("ucwa", "graph"), strict=True):
        sync_user = {"userPrincipalName": f"sync@{name}.example"} if profile == "ucwa" else {
            "userPrincipalName": f"sync@{name}.example", "create": True, "usageLocation": "DK",
            "licenseSkuId": "18181a46-0d4e-45cd-891e-60aabd171b4e"}
        (repo / f"Pulumi.{name}.yaml").write_text(json.dumps({
            "secretsprovider": "azurekeyvault://partner-kv.vault.azure.net/keys/presencesync-secrets",
            "encryptedkey": "ZmFrZS1rZXk=",
            "config": {"azuread:tenantId": tenant, "presencesync:profile": profile,
                       "presencesync:syncUser": sync_user, "presencesync:syncUserPassword": KEY_VAULT_SECRET}}))
    return fake, env, repo


def bootstrap(env: dict[str, str], repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(repo / "scripts" / "bootstrap.sh"), *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=900, check=False)


def mark(fake: FakeEntra) -> tuple[int, int]:
    return len(fake.directory.seen), len(fake.directory.arm.requests)


def writes_since(fake: FakeEntra, since: tuple[int, int] = (0, 0)) -> list[tuple[str, str]]:
    """The Graph and Resource Manager requests since `since` (a `mark`) that could change something."""
    graph = [(s.method, s.path) for s in fake.directory.seen[since[0]:]
             if s.method in ("POST", "PATCH", "DELETE", "PUT") and s.path.startswith("/v1.0/")]
    return graph + [(m, p) for m, p in fake.directory.arm.requests[since[1]:] if m in ("PUT", "PATCH", "DELETE")]


def test_the_bootstrap_sets_the_partner_up_and_a_second_run_changes_nothing(partner):
    fake, env, repo = partner
    first = bootstrap(env, repo, *ARGS)
    assert first.returncode == 0, first.stderr
    d, arm = fake.directory, fake.directory.arm

    # State: versioned, soft-deleting storage and a private container; a Key Vault with RBAC and its key.
    group = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/presencesync"
    account = f"{group}/providers/Microsoft.Storage/storageAccounts/partnerstate"
    assert arm.get(group)["location"] == "westeurope"
    assert arm.get(account)["properties"]["allowBlobPublicAccess"] is False
    blob = arm.get(f"{account}/blobServices/default")["properties"]
    assert blob["isVersioningEnabled"] is True and blob["deleteRetentionPolicy"]["enabled"] is True
    assert blob["containerDeleteRetentionPolicy"]["enabled"] is True
    container = f"{account}/blobServices/default/containers/presencesync"
    assert arm.get(container) is not None  # private: no publicAccess given, which ARM reads as none
    vault = f"{group}/providers/Microsoft.KeyVault/vaults/partner-kv"
    assert arm.get(vault)["properties"]["enableRbacAuthorization"] is True
    assert arm.get(f"{vault}/keys/presencesync-secrets")["properties"]["kty"] == "RSA"

    # Two multi-tenant apps: the deployer with exactly what ucwa + graph + sync-user creation need, the
    # preview app read-only; each with its own federated credentials.
    apps = {a["displayName"]: a for a in d.applications.values()}
    assert set(apps) == {"presencesync-deployer", "presencesync-preview"}
    deployer, preview = apps["presencesync-deployer"], apps["presencesync-preview"]
    for app, names in ((deployer, deployer_roles(("ucwa", "graph"), creates_sync_users=True)),
                       (preview, PREVIEW_ROLES)):
        assert app["signInAudience"] == "AzureADMultipleOrgs"
        assert app["requiredResourceAccess"] == [{"resourceAppId": MICROSOFT_GRAPH, "resourceAccess": [
            {"id": GRAPH_APP_ROLES[name], "type": "Role"} for name in names]}]
    assert "Presence.ReadWrite.All" not in deployer_roles(("ucwa", "graph"), creates_sync_users=True)
    federated = {app["displayName"]: {(c["issuer"], c["subject"], tuple(c["audiences"])) for c in app["_federated"]}
                 for app in (deployer, preview)}
    github, ado = "https://token.actions.githubusercontent.com", "https://vstoken.dev.azure.com/0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
    audience = ("api://AzureADTokenExchange",)
    assert federated == {
        "presencesync-deployer": {(github, "repo:partner/gitops:environment:tenants", audience),
                                  (github, "repo:partner/gitops:environment:rotation", audience),
                                  (github, "repo:partner/gitops:ref:refs/heads/main", audience),
                                  (ado, "sc://partner/gitops/presencesync-deployer", audience)},
        "presencesync-preview": {(github, "repo:partner/gitops:environment:preview", audience),
                                 (ado, "sc://partner/gitops/presencesync-preview", audience)}}

    # Role assignments: the deployer writes state, the preview app and the admins only read it; all decrypt.
    sp = {app["displayName"]: d.service_principals[app["appId"]]["id"] for app in (deployer, preview)}
    role_names = {v: k for k, v in BUILT_IN_ROLES.items()}
    assigned = {(r["properties"]["principalId"], role_names[r["properties"]["roleDefinitionId"].rsplit("/", 1)[1]],
                 r["properties"]["scope"].rsplit("/", 2)[1], r["properties"].get("principalType"))
                for r in arm.resources.values() if r["type"] == "Microsoft.Authorization/roleAssignments"}
    assert assigned == {
        (sp["presencesync-deployer"], "Storage Blob Data Contributor", "containers", "ServicePrincipal"),
        (sp["presencesync-deployer"], "Key Vault Crypto User", "keys", "ServicePrincipal"),
        (sp["presencesync-preview"], "Storage Blob Data Reader", "containers", "ServicePrincipal"),
        (sp["presencesync-preview"], "Key Vault Crypto User", "keys", "ServicePrincipal"),
        (ADMIN_GROUP, "Storage Blob Data Reader", "containers", "Group"),
        (ADMIN_GROUP, "Key Vault Crypto User", "keys", "Group")}

    # What the pipelines need, and each customer's two consent links.
    values = dict(line.split("=", 1) for line in first.stdout.splitlines() if not line.startswith("#"))
    assert values == {"AZURE_CLIENT_ID": deployer["appId"], "AZURE_PREVIEW_CLIENT_ID": preview["appId"],
                      "AZURE_TENANT_ID": d.tenant_id, "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
                      "PULUMI_STATE_STORAGE_ACCOUNT": "partnerstate", "PULUMI_STATE_CONTAINER": "presencesync",
                      "PULUMI_BACKEND_URL": "azblob://presencesync",
                      "PULUMI_SECRETS_PROVIDER": "azurekeyvault://partner-kv.vault.azure.net/keys/presencesync-secrets"}
    for tenant in CUSTOMERS.values():
        for app in (deployer, preview):
            assert f"{fake.url}/{tenant}/adminconsent?client_id={app['appId']}" in first.stdout

    assert len(writes_since(fake)) >= 20  # what the first run made (counted to show the count works)
    before = mark(fake)
    again = bootstrap(env, repo, *ARGS)
    assert again.returncode == 0, again.stderr
    assert writes_since(fake, before) == []
    assert again.stdout == first.stdout


def test_a_changed_profile_and_a_moved_repository_are_corrected_in_place(partner):
    fake, env, repo = partner
    assert bootstrap(env, repo, *ARGS).returncode == 0
    deployer = next(a for a in fake.directory.applications.values() if a["displayName"] == "presencesync-deployer")
    app_id = deployer["appId"]
    (repo / "Pulumi.customer-b.yaml").unlink()  # only ucwa left: no app role assignments to make
    before = mark(fake)
    done = bootstrap(env, repo, *["partner/renamed" if a == "partner/gitops" else a for a in ARGS])
    assert done.returncode == 0, done.stderr
    assert deployer["appId"] == app_id and [r["id"] for r in deployer["requiredResourceAccess"][0]["resourceAccess"]] \
        == [GRAPH_APP_ROLES[n] for n in deployer_roles(("ucwa",), creates_sync_users=False)]
    assert {c["subject"] for c in deployer["_federated"]} == {
        "repo:partner/renamed:environment:tenants", "repo:partner/renamed:environment:rotation",
        "repo:partner/renamed:ref:refs/heads/main", "sc://partner/gitops/presencesync-deployer"}
    changed = writes_since(fake, before)
    assert changed and all(path.startswith("/v1.0/applications/") for _, path in changed)  # nothing else touched
    assert all(method == "PATCH" for method, _ in changed)


def test_bad_arguments_stop_before_anything_is_touched(partner):
    fake, env, repo = partner
    before = len(fake.directory.seen) + len(fake.directory.arm.requests)
    for args, message in (
            ((), "--location, --storage-account and --key-vault are required"),
            (("--location", "westeurope", "--storage-account", "@/etc/passwd", "--key-vault", "kv1"),
             "--storage-account '@/etc/passwd' must be 3-24 lower-case letters and digits"),
            ((*ARGS[:6], "--github", "partner/gitops:environment:tenants"), "is not OWNER/REPO"),
            ((*ARGS[:6], "--ado-issuer", "https://evil.example/x", "--ado-subject", "a", "--ado-preview-subject", "b"),
             "is neither https://vstoken.dev.azure.com/<organization ID>"),
            ((*ARGS[:6], "--admin-user", "alice"), "an admin's object ID 'alice' is not a GUID"),
            ((*ARGS[:6], "--profiles", "teams"), "--profiles 'teams': give one or more of ucwa, graph")):
        done = bootstrap(env, repo, *args)
        assert done.returncode != 0
        assert message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert len(fake.directory.seen) + len(fake.directory.arm.requests) == before


def test_a_tenant_without_a_permission_stops_the_script_naming_it(partner):
    fake, env, repo = partner
    graph = fake.directory.service_principals[MICROSOFT_GRAPH]
    graph["appRoles"] = [r for r in graph["appRoles"] if r["value"] != "Domain.Read.All"]
    done = bootstrap(env, repo, *ARGS)
    assert done.returncode != 0
    assert re.search(r"offers no application permission Domain\.Read\.All", done.stderr), done.stderr
    assert not fake.directory.applications  # no app with a partial permission list



def test_objects_not_yet_replicated_are_waited_for(partner):
    """Entra ID answers a service principal for an app created a moment ago with 400 "does not reference a
    valid application object", Resource Manager a role assignment for a new principal with 400
    PrincipalNotFound (terraform-provider-azuread issues 581, 611; Azure RBAC troubleshooting)."""
    fake, env, repo = partner
    fake.directory.faults += [
        Fault("POST", r"^/v1\.0/servicePrincipals$", 400, body={"error": {
            "code": "Request_BadRequest", "message": "The appId 'x' of the service principal does not reference a "
                                                     "valid application object."}}),
        Fault("PUT", r"/roleAssignments/", 400, body={"error": {
            "code": "PrincipalNotFound", "message": "Principal 0f0f does not exist in the directory."}})]
    done = bootstrap(env, repo, *ARGS)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("not replicated yet; retrying in 2 s") == 2
    assert all(f.times == 0 for f in fake.directory.faults)
    fake.directory.faults.append(Fault("PUT", r"/roleAssignments/", 403, times=1, body={"error": {
        "code": "AuthorizationFailed", "message": "The client does not have authorization to perform action."}}))
    fake.directory.arm.resources = {k: v for k, v in fake.directory.arm.resources.items()
                                    if v["type"] != "Microsoft.Authorization/roleAssignments"}
    refused = bootstrap(env, repo, *ARGS)
    assert refused.returncode != 0 and "does not have authorization" in refused.stderr
    assert "retrying" not in refused.stderr and "AZURE_CLIENT_ID" not in refused.stdout


def test_before_any_stack_the_profiles_are_named_and_no_links_printed(partner):
    fake, env, repo = partner
    for stack in repo.glob("Pulumi.customer-*.yaml"):
        stack.unlink()
    done = bootstrap(env, repo, *ARGS[:6], "--profiles", "ucwa")
    assert done.returncode == 0, done.stderr
    deployer = next(a for a in fake.directory.applications.values() if a["displayName"] == "presencesync-deployer")
    assert [r["id"] for r in deployer["requiredResourceAccess"][0]["resourceAccess"]] == \
        [GRAPH_APP_ROLES[n] for n in deployer_roles(("ucwa",), creates_sync_users=False)]
    assert "adminconsent" not in done.stdout and "no stacks yet: rerun after adding tenants" in done.stdout
    assert not any(app.get("_federated") for app in fake.directory.applications.values())  # no --github, no --ado
