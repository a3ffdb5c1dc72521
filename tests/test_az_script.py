"""The guide's az CLI path, run for real: the script `manifest --az-script` writes, run twice (and once
more asking for a new secret) with the real Azure CLI against the loopback fake, the directory checked
after each run.

The Azure CLI (azure-cli from PyPI) lives in its own virtualenv, .cache/azure-cli, which
scripts/test.sh installs once. It is pointed at the fake as a registered cloud (`az cloud register
--skip-endpoint-discovery`, Resource Manager on another origin so `az rest` picks Graph tokens for
Graph URLs) and signed in with a username and password through its own public client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    AZ,
    AZ_CLI_APP,
    DEPLOYER_APP,
    DEPLOYER_SECRET,
    GRAPH_ROLES,
    GRAPH_SCOPES,
    ROOT,
    SECURE,
    SKYPE_SCOPES,
    az_signed_in,
)
from fake_entra import App, FakeEntra, Fault, User

from presencesync.permissions import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE

ADMIN = User("admin@contoso.com", "Adm1n-Pa55word!")
SYNC_USER = "sync@contoso.com"
SYNC_PASSWORD = "Sync-Us3r-Pa55word!"

pytestmark = [pytest.mark.az, pytest.mark.skipif(not AZ.exists(), reason="the Azure CLI is not in "
                                                  ".cache/azure-cli (bash scripts/test_az.sh installs it)")]


@pytest.fixture
def az_tenant(fake: FakeEntra, tmp_path: Path):
    d = fake.directory
    d.add_app(App(AZ_CLI_APP, set(), first_party=True), with_service_principal=False)
    d.add_app(App(DEPLOYER_APP, {DEPLOYER_SECRET}))  # for the generator, which reads the Skype IDs
    d.users[ADMIN.upn] = ADMIN
    d.add_resource_api(SKYPE_FOR_BUSINESS_ONLINE, SKYPE_SCOPES)
    d.add_resource_api(MICROSOFT_GRAPH, GRAPH_SCOPES, GRAPH_ROLES)
    env = az_signed_in(fake, tmp_path, ADMIN.upn, ADMIN.password)
    return fake, env


def script_for(fake: FakeEntra, tmp_path: Path, config: dict) -> Path:
    stack = tmp_path / "Pulumi.t.yaml"
    values = {"azuread:tenantId": fake.directory.tenant_id, "presencesync:syncUserPassword": SECURE, **config}
    stack.write_text(json.dumps({"config": {k: v for k, v in values.items() if v is not None}}))  # None: left out
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARM_", "PRESENCESYNC_"))}
    env.update(fake.env(), ARM_CLIENT_ID=DEPLOYER_APP, ARM_CLIENT_SECRET=DEPLOYER_SECRET,
               ARM_TENANT_ID=fake.directory.tenant_id, PATH=os.path.dirname(sys.executable))
    done = subprocess.run([sys.executable, "-m", "presencesync", "manifest", "--config", str(stack), "--az-script"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "setup.sh"
    path.write_text(done.stdout)
    return path


def run_script(script: Path, env: dict[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script)], cwd=script.parent, env={**env, **extra}, capture_output=True,
                          text=True, timeout=600, check=False)


def directory_state(fake: FakeEntra) -> dict:
    d = fake.directory
    apps = [a for a in d.applications.values() if a["displayName"] == "PresenceSync"]
    assert len(apps) == 1, apps
    app = apps[0]
    sps = [sp for sp in d.service_principals.values() if sp["appId"] == app["appId"]]
    assert len(sps) == 1
    owners = {u.upn for u in d.users.values() if u.id in app["_owners"]}
    grants = {next(k for k, sp in d.service_principals.items() if sp["id"] == g["resourceId"]): g["scope"]
              for g in d.grants.values() if g["clientId"] == sps[0]["id"]}
    roles = sorted(a["appRoleId"] for a in d.role_assignments.values() if a["principalId"] == sps[0]["id"])
    return {"app": app, "owners": owners, "grants": grants, "roles": roles,
            "secrets": [c["displayName"] for c in app["passwordCredentials"]]}


@pytest.mark.parametrize(("profile", "create"), [("ucwa", True), ("graph", False)])
def test_the_script_sets_a_tenant_up_and_can_run_again(az_tenant, tmp_path, profile, create):
    fake, env = az_tenant
    if not create:
        fake.directory.users[SYNC_USER] = User(SYNC_USER, SYNC_PASSWORD)
    script = script_for(fake, tmp_path, {"presencesync:profile": profile, "presencesync:syncUser": {
        "userPrincipalName": SYNC_USER, "create": create, **({"licensedElsewhere": True} if create else {})}})

    first = run_script(script, env, SYNC_USER_PASSWORD=SYNC_PASSWORD)
    assert first.returncode == 0, first.stderr
    state = directory_state(fake)
    app = state["app"]
    expected_scopes = {"ucwa": {SKYPE_FOR_BUSINESS_ONLINE: "Contacts.ReadWrite User.ReadWrite",
                                MICROSOFT_GRAPH: "User.Read"},
                       "graph": {MICROSOFT_GRAPH: "Presence.Read.All User.Read"}}[profile]
    assert state["grants"] == expected_scopes
    assert state["roles"] == ([] if profile == "ucwa" else
                              sorted(GRAPH_ROLES[r] for r in ("Presence.ReadWrite.All", "User.ReadBasic.All")))
    assert state["owners"] == {ADMIN.upn, SYNC_USER} and state["secrets"] == ["presencesync (Novus)"]
    assert app["isFallbackPublicClient"] is (profile == "ucwa")
    assert app["web"]["implicitGrantSettings"]["enableIdTokenIssuance"] is (profile == "ucwa")
    requested = {r["resourceAppId"]: sorted(a["id"] for a in r["resourceAccess"]) for r in app["requiredResourceAccess"]}
    assert set(requested) == set(expected_scopes)
    lines = dict(line.split(":", 1) for line in first.stdout.splitlines())
    assert lines["Tenant ID"].strip() == "contoso.onmicrosoft.com" and lines["Client ID"].strip() == app["appId"]
    assert lines["Client secret"].strip().startswith("fake~")

    again = run_script(script, env, SYNC_USER_PASSWORD=SYNC_PASSWORD)
    assert again.returncode == 0, again.stderr
    assert "Found an existing application instance" in again.stderr  # az patched the same app
    state_again = directory_state(fake)
    assert {k: state_again[k] for k in ("grants", "roles", "owners", "secrets")} == \
        {k: state[k] for k in ("grants", "roles", "owners", "secrets")}
    assert "Client secret: (unchanged: the secret 'presencesync (Novus)' Novus has is valid until" in again.stdout

    if profile == "graph":  # once is enough: the step is the same in both profiles
        renewed = run_script(script, env, NEW_SECRET="1")
        assert renewed.returncode == 0, renewed.stderr
        assert directory_state(fake)["secrets"] == ["presencesync (Novus)"] * 2


def test_a_failing_command_stops_the_script_with_its_own_message(az_tenant, tmp_path):
    fake, env = az_tenant
    fake.directory.users[SYNC_USER] = User(SYNC_USER, SYNC_PASSWORD)
    script = script_for(fake, tmp_path, {"presencesync:profile": "graph",
                                         "presencesync:syncUser": {"userPrincipalName": SYNC_USER}})
    fake.directory.faults.append(Fault("GET", r"^/v1\.0/domains$", 403, times=5, body={"error": {
        "code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the operation."}}))
    done = run_script(script, env)
    assert done.returncode != 0
    assert "Insufficient privileges to complete the operation." in done.stderr
    assert "Tenant ID:" not in done.stdout  # not an empty value printed as if it were the answer
    del fake.directory.users[SYNC_USER]  # an owner that does not exist: az's error, and the script stops there
    fake.directory.faults.clear()
    done = run_script(script, env)
    assert done.returncode != 0 and "does not exist" in done.stderr and "Client ID:" not in done.stdout


def test_the_sync_user_password_is_never_an_az_argument(az_tenant, tmp_path):
    """Every user of a machine can read every process's arguments (/proc/PID/cmdline): the script creates the
    user through Graph from a body file (az rest --body @file), owner-only and removed afterwards."""
    fake, env = az_tenant
    password = "@Sync-\"Us3r\"\\Pa55word%s!"  # @, quotes, a backslash and a format: it must arrive as it is
    script = script_for(fake, tmp_path, {"presencesync:profile": "ucwa", "presencesync:syncUser": {
        "userPrincipalName": SYNC_USER, "create": True, "licensedElsewhere": True}})
    shim_dir, temp = tmp_path / "shim", tmp_path / "temp"
    shim_dir.mkdir()
    temp.mkdir()
    log = tmp_path / "argv.log"
    shim = shim_dir / "az"  # records each az command's arguments, and the mode of every @file it is given
    shim.write_text(f"""#!/usr/bin/env bash
for arg in "$@"; do
  printf '%s\\n' "$arg" >>{log}
  case "$arg" in @/*) stat -c 'mode %a' "${{arg#@}}" >>{log};; esac
done
exec {AZ} "$@"
""")
    shim.chmod(0o755)
    done = run_script(script, {**env, "PATH": f"{shim_dir}:{env['PATH']}", "TMPDIR": str(temp)},
                      SYNC_USER_PASSWORD=password)
    assert done.returncode == 0, done.stderr
    arguments = log.read_text()
    assert password not in arguments  # the old script passed it as --password "$SYNC_USER_PASSWORD"
    assert "mode 600" in arguments.splitlines()
    assert list(temp.iterdir()) == []  # the body file is gone
    assert fake.directory.users[SYNC_USER].password == password


def test_az_reads_a_file_for_the_values_the_config_refuses(az_tenant, tmp_path):
    """What the config rule rests on, run with the real CLI: az replaces an argument (or its part after the
    first `=`) that starts with @ by the content of the file it names (azure-cli
    azure/cli/core/commands/__init__.py, `_expand_file_prefixed_files`), so a display name or a redirect
    URI shaped so would carry a local file into the customer's app registration."""
    from presencesync.untrusted import az_file_problem

    fake, env = az_tenant
    secret = tmp_path / ".git-credentials"
    secret.write_text("https://partner:ghp_token@github.com")
    probes = {f"@{secret}": True, "@~/.git-credentials": True, f"x=@{secret}": True,
              f"https://a.example/cb?x=@{secret}": True, f"a@{secret}": False, f"@{secret}-missing": False,
              "Presence@Sync": False}
    for value, expanded in probes.items():
        done = subprocess.run([str(AZ), "ad", "app", "create", "--display-name", value, "--query", "displayName",
                               "--output", "tsv"], env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        read = "ghp_token" in done.stdout
        assert read is expanded, (value, done.stdout)
        if read:
            assert az_file_problem(value) is not None, value
    assert secret.read_text() in {app["displayName"] for app in fake.directory.applications.values()}
    stack = tmp_path / "Pulumi.h.yaml"
    stack.write_text(json.dumps({"config": {"presencesync:displayName": "@~/.git-credentials",
                                            "presencesync:syncUser": {"userPrincipalName": SYNC_USER},
                                            "presencesync:syncUserPassword": {"secure": "v1:x"}}}))
    done = subprocess.run([sys.executable, "-m", "presencesync", "manifest", "--config", str(stack), "--az-script"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    # The old code wrote the script, whose `az ad app create --display-name '@~/.git-credentials'` named the app
    # after the file's content.
    assert done.returncode == 1 and done.stdout == ""
    assert "presencesync:displayName: '@~/.git-credentials' starts with @" in done.stderr


def test_a_display_name_full_of_shell_and_json_syntax_arrives_as_written(az_tenant, tmp_path):
    """Values the config allows reach az (and the sync user's Graph body) as one word each, never as syntax."""
    fake, env = az_tenant
    name = "Presence \"Sync\" $(touch pwned) `id` 100% \\n 'x' ; #"
    script = script_for(fake, tmp_path, {"presencesync:profile": "ucwa", "presencesync:displayName": name,
                                         "presencesync:syncUser": {"userPrincipalName": SYNC_USER, "create": True,
                                                                   "licensedElsewhere": True}})
    done = run_script(script, env, SYNC_USER_PASSWORD=SYNC_PASSWORD)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "pwned").exists()
    assert [a["displayName"] for a in fake.directory.applications.values()] == [name]
    assert fake.directory.users[SYNC_USER].password == SYNC_PASSWORD


def test_the_script_creates_and_proves_each_sync_user_of_the_collection(az_tenant, tmp_path):
    """Novus's collection: every created sync user made with its own password variable, every one an owner
    (the script checks), and the hand-over lines name them in the page's order."""
    fake, env = az_tenant
    fake.directory.users[SYNC_USER] = User(SYNC_USER, SYNC_PASSWORD)
    users = [{"userPrincipalName": "sync2@contoso.com", "create": True, "licensedElsewhere": True},
             {"userPrincipalName": SYNC_USER},
             {"userPrincipalName": "sync3@contoso.com", "create": True, "licensedElsewhere": True}]
    script = script_for(fake, tmp_path, {"presencesync:syncUserPassword": None, "presencesync:syncUsers": users,
                                         "presencesync:syncUserPasswords": {
                                             u["userPrincipalName"]: SECURE for u in users}})
    missing = run_script(script, env, SYNC_USER_PASSWORD="First-pa55word!")
    assert missing.returncode != 0 and "set SYNC_USER_PASSWORD_3 to the password of sync3@contoso.com" in missing.stderr
    done = run_script(script, env, SYNC_USER_PASSWORD="First-pa55word!", SYNC_USER_PASSWORD_3="Third-pa55word!")
    assert done.returncode == 0, done.stderr
    d = fake.directory
    assert d.users["sync2@contoso.com"].password == "First-pa55word!"
    assert d.users["sync3@contoso.com"].password == "Third-pa55word!"
    assert directory_state(fake)["owners"] == {ADMIN.upn, SYNC_USER, "sync2@contoso.com", "sync3@contoso.com"}
    names = [line.split(":", 1)[1].strip() for line in done.stdout.splitlines() if line.startswith("User name")]
    assert names == ["sync2@contoso.com", SYNC_USER, "sync3@contoso.com"]
