"""What the bootstrap grants, derived from the stacks (`bootstrap-plan`), and the script's own hygiene.
The script itself runs against the fakes in test_bootstrap.py (scripts/test_az.sh)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, run

from presencesync.bootstrap_plan import deployer_roles

KEY_VAULT_SECRET = {"secure": "v1:yNulcsuiSG9uBpaB:mG4FbUFZOtPVJ1HrQUbeubzZkrOjd8mboMV1Kux3jDBxu1l32RM="}  # v1: with encryptedkey

README_LIST = {  # the deployer's permissions as README "Prerequisites" states them
    "ucwa": {"Application.ReadWrite.All", "DelegatedPermissionGrant.ReadWrite.All", "User.Read.All", "Domain.Read.All",
             "Policy.Read.All"},
    "graph": {"Application.ReadWrite.All", "DelegatedPermissionGrant.ReadWrite.All", "User.Read.All", "Domain.Read.All",
              "Policy.Read.All", "AppRoleAssignment.ReadWrite.All"}}
SYNC_USER = {"User.ReadWrite.All", "Group.ReadWrite.All", "LicenseAssignment.ReadWrite.All"}


@pytest.mark.parametrize("profile", ["ucwa", "graph"])
@pytest.mark.parametrize("creates", [False, True])
def test_the_deployer_gets_what_the_readme_lists_for_its_profiles(profile, creates):
    assert set(deployer_roles((profile,), creates_sync_users=creates)) == README_LIST[profile] | (SYNC_USER if creates else set())


def write_stack(project: Path, name: str, **config) -> None:
    (project / f"Pulumi.{name}.yaml").write_text(json.dumps({
        "secretsprovider": "azurekeyvault://partner-kv.vault.azure.net/keys/presencesync-secrets",
        "encryptedkey": "ZmFrZS1rZXk=", "config": {
            "presencesync:syncUser": {"userPrincipalName": "sync@contoso.com"},
            "presencesync:syncUserPassword": KEY_VAULT_SECRET, **config}}))


def test_the_plan_reads_profiles_sync_user_creation_and_tenants_from_the_stacks(tmp_path):
    write_stack(tmp_path, "a", **{"azuread:tenantId": "11111111-1111-4111-8111-111111111111"})
    write_stack(tmp_path, "b", **{"azuread:tenantId": "22222222-2222-4222-8222-22222222222A",
                                  "presencesync:profile": "graph"})
    done = run("bootstrap-plan", "--project-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith(("profile", "tenant"))] == [
        "profile ucwa", "profile graph", "tenant a 11111111-1111-4111-8111-111111111111",
        "tenant b 22222222-2222-4222-8222-22222222222a"]
    assert {line.split()[1] for line in lines if line.startswith("deployer-role")} == README_LIST["graph"]
    assert [line for line in lines if line.startswith("preview-role")] == ["preview-role Directory.Read.All"]
    only_a = run("bootstrap-plan", "--project-dir", str(tmp_path), "--stacks", "a")
    assert "AppRoleAssignment.ReadWrite.All" not in only_a.stdout and "tenant b" not in only_a.stdout


@pytest.mark.parametrize(("tenant", "args", "message"), [
    (None, (), "every stack names its tenant: set the customer's directory (tenant) ID with pulumi config set "
               "azuread:tenantId <GUID>"),
    ("11111111-1111-4111-8111-111111111111\nBASH_ENV=$(id)", (), "is not a tenant ID (GUID)"),
    ("11111111-1111-4111-8111-111111111111", ("--stacks", "nothing-*"), "no Pulumi.<stack>.yaml in"),
    ("11111111-1111-4111-8111-111111111111", ("--creates-sync-users",), "--creates-sync-users goes with --profiles"),
])
def test_a_stack_that_cannot_say_where_it_runs_is_one_line(tmp_path, tenant, args, message):
    write_stack(tmp_path, "x", **({"azuread:tenantId": tenant} if tenant else {}))
    done = run("bootstrap-plan", "--project-dir", str(tmp_path), *args)
    assert done.returncode == 1 and message in done.stderr and "tenant " not in done.stdout
    assert len(done.stderr.strip().splitlines()) == 1


def test_shellcheck_finds_nothing_in_the_bootstrap_script():
    assert shutil.which("shellcheck"), "shellcheck is needed (apt-get install shellcheck; scripts/test.sh does it as root)"
    done = subprocess.run(["shellcheck", str(ROOT / "scripts" / "bootstrap.sh")], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout


def test_the_readme_prerequisites_name_what_the_bootstrap_derives():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = text[text.index("As a service principal it needs"):text.index("requests exactly these")]
    listed = set(re.findall(r"`([A-Za-z]+(?:\.[A-Za-z]+)+)`", paragraph))
    assert listed == set(deployer_roles(("ucwa", "graph"), creates_sync_users=True))


def test_a_stack_file_name_that_is_no_stack_name_is_refused(tmp_path):
    write_stack(tmp_path, "acme$(id>&2)", **{"azuread:tenantId": "11111111-1111-4111-8111-111111111111"})
    done = run("bootstrap-plan", "--project-dir", str(tmp_path))
    assert done.returncode == 1 and "a stack name is 1 to 100 letters, digits" in done.stderr
    assert done.stdout == ""
