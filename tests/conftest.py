from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_entra import App, FakeEntra, RealmPortUnavailableError, User  # noqa: E402

from presencesync.offline_plan import Plan, ResourceApi, TenantFacts, run_program  # noqa: E402
from presencesync.permissions import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE  # noqa: E402

TENANT_ID = "f2a33a3e-2d9b-4d2e-9a55-3c0e1a7b8c9d"
DEPLOYER = "0a1b2c3d-0000-4000-8000-00000000de01"
SYNC_USER_ID = "5e5e5e5e-1111-4111-8111-111111111111"
SKYPE_SP = "7b7b7b7b-2222-4222-8222-222222222222"
GRAPH_SP = "8c8c8c8c-3333-4333-8333-333333333333"
SKYPE_SCOPES = {"Contacts.ReadWrite": "1c1c1c1c-4444-4444-8444-444444444444",
                "User.ReadWrite": "2d2d2d2d-5555-4555-8555-555555555555",
                "Meetings.ReadWrite": "3e3e3e3e-6666-4666-8666-666666666666"}
GRAPH_SCOPES = {"User.Read": "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
                "Presence.Read.All": "9c7a330d-35b3-4aa1-963d-cb2b9f927841",
                "Presence.Read": "76bc735e-aecd-4a1d-8b4c-2b915deabb79"}
GRAPH_ROLES = {"Presence.ReadWrite.All": "83cded22-8297-4ff6-a7fa-e97e9545a259",
               "Presence.Read.All": "a70e0c2d-e793-494c-94c4-118fa0a67f42",
               "User.ReadBasic.All": "97235f07-e226-4f63-ace3-39588e11d3a1"}
PASSWORD = "Sync-Us3r-Pa55word!"
# An encrypted value as the Pulumi Cloud (service) secrets manager writes it: plain base64, with no
# encryptionsalt or encryptedkey in the stack file (pkg/secrets/service/manager.go). Test stacks use it
# where the value is never decrypted.
SECURE = {"secure": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
SECRET = ("presencesync:syncUserPassword", "presencesync:syncUserPasswords")  # as the CLI marks encrypted keys


EXAMPLE_STACK = ROOT / "Pulumi.dev.yaml"
# A partner's repository replaces the example stack by its own (README, "Many tenants"): tests of the
# example itself skip there, all others bring their own stacks.
needs_example_stack = pytest.mark.skipif(not EXAMPLE_STACK.exists(),
                                         reason="Pulumi.dev.yaml (the example stack) is not in this repository")


@pytest.fixture
def facts() -> TenantFacts:
    return TenantFacts(
        tenant_id=TENANT_ID, deployer_object_id=DEPLOYER, default_domain="contoso.onmicrosoft.com",
        resource_apis={SKYPE_FOR_BUSINESS_ONLINE: ResourceApi(SKYPE_SP, SKYPE_SCOPES),
                       MICROSOFT_GRAPH: ResourceApi(GRAPH_SP, GRAPH_SCOPES, GRAPH_ROLES)},
        users={"sync@contoso.com": SYNC_USER_ID})


def stack_config(**overrides: Any) -> dict[str, str]:
    """A minimal valid stack config; overrides are `key=value` (None removes the key)."""
    config: dict[str, Any] = {"azuread:tenantId": TENANT_ID, "syncUser": {"userPrincipalName": "sync@contoso.com"},
                              "syncUserPassword": PASSWORD}
    config.update(overrides)
    return {f"presencesync:{k}" if ":" not in k else k: v if isinstance(v, str) else json.dumps(v)
            for k, v in config.items() if v is not None}


@pytest.fixture
def plan(facts: TenantFacts):
    def run(**overrides: Any) -> Plan:
        return run_program(stack_config(**overrides), facts, secret_keys=SECRET)
    return run


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeEntra]:
    try:
        server = FakeEntra(tmp_path)
    except RealmPortUnavailableError as why:
        pytest.skip(f"the loopback fake of Entra ID cannot listen on port 443 ({why}): tests that sign in skipped")
    yield server
    server.close()


# Helpers the test modules share (one module never imports another).
DEPLOYER_APP = "d0d0d0d0-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
DEPLOYER_SECRET = "deployer-secret-value"
CLIENT_ID = "c1c1c1c1-9999-4999-8999-999999999999"
CLIENT_SECRET = "new-client-secret-value~abc"
UPN = "sync@contoso.com"


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ARM_", "PRESENCESYNC_"))}
    clean["PATH"] = os.path.dirname(sys.executable)  # no az CLI to fall back on
    return subprocess.run([sys.executable, "-m", "presencesync", *args], capture_output=True, text=True,
                          env={**clean, **(env or {})}, cwd=cwd, stdin=subprocess.DEVNULL, timeout=120,
                          check=False)


def write_stack(tmp_path: Path, config: dict) -> Path:
    """Pulumi.t.yaml with `config`, naming the test tenant unless `config` names one (None: no tenant)."""
    path = tmp_path / "Pulumi.t.yaml"
    config = {k: v for k, v in {"azuread:tenantId": TENANT_ID, **config}.items() if v is not None}
    path.write_text(json.dumps({"config": config}))  # JSON is YAML
    return path


def deployer_env(fake: FakeEntra) -> dict[str, str]:
    return {**fake.env(), "ARM_CLIENT_ID": DEPLOYER_APP, "ARM_CLIENT_SECRET": DEPLOYER_SECRET,
            "ARM_TENANT_ID": fake.directory.tenant_id}


def consent(fake: FakeEntra) -> None:
    fake.directory.add_grant(CLIENT_ID, SKYPE_FOR_BUSINESS_ONLINE, "Contacts.ReadWrite User.ReadWrite")
    fake.directory.add_grant(CLIENT_ID, MICROSOFT_GRAPH, "User.Read")


def outputs(fake: FakeEntra, end_date: str = "2028-11-26T00:00:00Z") -> dict:
    d = fake.directory
    return {"novus": {"tenantId": "contoso.com", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
                      "userName": UPN, "password": PASSWORD},
            "directoryTenantId": d.tenant_id, "applicationObjectId": d.apps[CLIENT_ID].object_id,
            "servicePrincipalObjectId": d.service_principals[CLIENT_ID]["id"], "clientSecretEndDate": end_date,
            "adminConsentUrl": f"{fake.url}/{d.tenant_id}/adminconsent?client_id={CLIENT_ID}"}


def post_deploy(fake: FakeEntra, tmp_path: Path, *args: str, consent_mode: str = "resource", deployer: bool = True,
                timeout: int = 60, outs: dict | None = None, profile: str = "ucwa"):
    stack = tmp_path / "Pulumi.t.yaml"
    stack.write_text(json.dumps({"config": {
        "azuread:tenantId": fake.directory.tenant_id, "presencesync:profile": profile, "presencesync:consent": consent_mode,
        "presencesync:syncUser": {"userPrincipalName": UPN},
        "presencesync:syncUserPassword": SECURE, "presencesync:postDeployTimeout": timeout}}))
    out_file = tmp_path / "outputs.json"
    out_file.write_text(json.dumps(outs or outputs(fake)))
    env = fake.env()
    if deployer:
        env.update(ARM_CLIENT_ID=DEPLOYER_APP, ARM_CLIENT_SECRET=DEPLOYER_SECRET, ARM_TENANT_ID=fake.directory.tenant_id)
    return run("post-deploy", "--config", str(stack), "--outputs", str(out_file), "--project-dir", str(tmp_path),
               *args, env=env)


def assert_no_secret(done, fake: FakeEntra) -> None:
    for secret in (CLIENT_SECRET, PASSWORD, DEPLOYER_SECRET, *fake.directory.issued_tokens):
        assert secret not in done.stdout + done.stderr


@pytest.fixture
def tenant(fake: FakeEntra) -> FakeEntra:
    """The fake tenant with the deployer's app and both resource APIs (Graph offering User.Read);
    a module's own `tenant` fixture may build on it."""
    d = fake.directory
    d.add_app(App(DEPLOYER_APP, {DEPLOYER_SECRET}))
    d.add_resource_api(SKYPE_FOR_BUSINESS_ONLINE, SKYPE_SCOPES)
    d.add_resource_api(MICROSOFT_GRAPH, {"User.Read": "e1fe6dd8-ba31-4d61-89e7-88639da4683d"})
    return fake


# What the README's Prerequisites give a deploying service principal, and Policy.Read.All for the preflight.
DEPLOYER_PERMISSIONS = ("Application.ReadWrite.All", "DelegatedPermissionGrant.ReadWrite.All", "User.Read.All",
                        "Domain.Read.All", "AppRoleAssignment.ReadWrite.All", "User.ReadWrite.All",
                        "Group.ReadWrite.All", "LicenseAssignment.ReadWrite.All", "Policy.Read.All")


def deployer_may_deploy(fake: FakeEntra) -> None:
    """The fake's deployer app (named apart from the stack's app) gets every Graph permission the README
    lists and Policy.Read.All: what the preflight checks of the deployer then holds."""
    d = fake.directory
    d.apps[DEPLOYER_APP].display_name = "Partner deployer"
    graph = d.service_principals[MICROSOFT_GRAPH]
    for role in DEPLOYER_PERMISSIONS:
        graph["appRoles"].append({"value": role, "id": str(uuid.uuid4()), "allowedMemberTypes": ["Application"]})
        d.add_role_assignment(DEPLOYER_APP, MICROSOFT_GRAPH, role)


@pytest.fixture
def clean_tenant(tenant: FakeEntra) -> FakeEntra:
    """conftest's tenant with a licensed sync user and a deployer that may deploy: a tenant where preflight
    finds nothing."""
    tenant.directory.users[UPN] = User(UPN, PASSWORD)
    deployer_may_deploy(tenant)
    return tenant


# Debian's headless Chromium, driven by Playwright (which downloads no browser of its own), for the
# tests that read a page or a card as a browser shows it. Started as the machine's probe starts it:
# a closed network refuses Chromium's background connections.
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: browser test skipped")
    if not CHROMIUM.exists():
        pytest.skip("headless Chromium is not installed (apt-get install chromium): browser test skipped")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


AZ = ROOT / ".cache" / "azure-cli" / "bin" / "az"
AZ_CLI_APP = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"  # the Azure CLI's own public client


def az_signed_in(fake: FakeEntra, tmp_path: Path, upn: str, password: str) -> dict[str, str]:
    """The environment of a real Azure CLI pointed at the fake as a registered cloud (Resource Manager on
    its own origin, so `az rest` picks the token audience by URL) and signed in as `upn` with a password
    through its own public client; the caller adds the user and the Azure CLI's app to the directory."""
    config_dir = tmp_path / "azure-config"
    config_dir.mkdir(mode=0o700)
    env = {"AZURE_CONFIG_DIR": str(config_dir), "REQUESTS_CA_BUNDLE": str(fake.ca_path), "HOME": str(tmp_path),
           "PATH": f"{AZ.parent}:/usr/bin:/bin", "AZURE_CORE_COLLECT_TELEMETRY": "false"}
    for args in (["cloud", "register", "--name", "Fake", "--skip-endpoint-discovery",
                  "--endpoint-active-directory", fake.url,
                  "--endpoint-active-directory-resource-id", "https://management.core.windows.net/",
                  "--endpoint-management", "https://management.core.windows.net/",
                  "--endpoint-resource-manager", f"{fake.arm_url}/",
                  "--endpoint-microsoft-graph-resource-id", f"{fake.url}/",
                  "--suffix-keyvault-dns", ".vault.azure.net"],  # az keyvault refuses a cloud without it
                 ["cloud", "set", "--name", "Fake"], ["config", "set", "core.instance_discovery=false"],
                 ["login", "-u", upn, "-p", password, "--allow-no-subscriptions", "--tenant",
                  fake.directory.tenant_id]):
        done = subprocess.run([str(AZ), *args], env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
    return env


def sequential_round_trips(starts: list[float], latency: float) -> int:
    """The fake's requests in waves, with every answer held back `latency` seconds: requests sent within half a
    round trip of a wave's first share it (sent side by side), a later one waited for an answer."""
    waves, first = 0, None
    for at in sorted(starts):
        if first is None or at - first >= latency / 2:
            waves, first = waves + 1, at
    return waves
