"""`check` and `manifest` run as processes, the way an admin or a pipeline runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import (
    DEPLOYER_APP,
    DEPLOYER_SECRET,
    SECURE,
    SKYPE_SCOPES,
    deployer_env,
    needs_example_stack,
    run,
    write_stack,
)
from fake_entra import App

from presencesync.permissions import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE

ROOT = Path(__file__).resolve().parent.parent


@needs_example_stack
def test_check_lists_the_example_stack_resources():
    done = run("check", "--stack", "dev")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "9 resources for profile ucwa, consent resource:"
    for expected in ["  Application application [protected]", "  ServicePrincipal service-principal [protected]",
                     "  ApplicationPassword client-secret [ignores changes to endDate]", "  User sync-user",
                     "  GroupLicense sync-user-licence",
                     "  ServicePrincipalDelegatedPermissionGrant consent-skype-for-business-online"]:
        assert expected in lines
    assert "      password: [secret]" in lines
    assert "Traceback" not in done.stderr


def test_check_reports_every_problem_as_one_line(tmp_path):
    path = write_stack(tmp_path, {"presencesync:consent": "always", "presencesync:owners": ["nope"],
                                  "presencesync:redirectUris": ["http://example.com"], "presencesync:secretExpiry": "5y",
                                  "presencesync:syncUserPasword": SECURE})
    done = run("check", "--config", str(path))
    assert done.returncode == 1
    errors = done.stderr.splitlines()
    assert "error: presencesync:syncUserPasword: unknown key (did you mean 'syncUserPassword'?); remove it or correct its name" in errors
    assert any(e.startswith("error: presencesync:consent: 'always'") for e in errors)
    assert any(e.startswith("error: presencesync:owners[0]: 'nope'") for e in errors)
    assert any(e.startswith("error: presencesync:redirectUris[0]:") for e in errors)
    assert any(e.startswith("error: presencesync:secretExpiry: '5y'") for e in errors)
    # The CLI's gate comes first, in its words (pkg/workspace/config.go, missingStackConfigurationKeysError).
    assert errors[0].startswith("error: presencesync:syncUser: Stack 't' is missing configuration value 'syncUser'")
    assert errors[1].startswith("error: presencesync:syncUserPassword: Stack 't' is missing configuration value")
    assert len(errors) == 7 and done.stdout == ""


def test_check_of_a_missing_or_broken_stack_file(tmp_path):
    done = run("check", "--stack", "nosuch")
    assert done.returncode == 1 and "Pulumi.nosuch.yaml: no such stack file" in done.stderr
    broken = tmp_path / "Pulumi.b.yaml"
    broken.write_text("config:\n  presencesync:consent: [unclosed\n")
    done = run("check", "--config", str(broken))
    assert done.returncode == 1 and "not valid YAML at line" in done.stderr and "Traceback" not in done.stderr


def test_check_with_hook_consent_lists_no_grants(tmp_path):
    path = write_stack(tmp_path, {"presencesync:consent": "hook", "presencesync:syncUser": {"userPrincipalName": "s@contoso.com"},
                                  "presencesync:syncUserPassword": SECURE})
    done = run("check", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert "PermissionGrant" not in done.stdout
    assert done.stdout.startswith("4 resources for profile ucwa, consent hook:")


def test_manifest_reads_unpublished_ids_from_the_tenant(tenant):
    done = run("manifest", env=deployer_env(tenant))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        {"resourceAppId": SKYPE_FOR_BUSINESS_ONLINE, "resourceAccess": [
            {"id": SKYPE_SCOPES["Contacts.ReadWrite"], "type": "Scope"},
            {"id": SKYPE_SCOPES["User.ReadWrite"], "type": "Scope"}]},
        {"resourceAppId": MICROSOFT_GRAPH, "resourceAccess": [
            {"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "type": "Scope"}]}]
    assert [s.path for s in tenant.directory.seen if s.path.startswith("/v1.0")] == \
        [f"/v1.0/servicePrincipals(appId='{SKYPE_FOR_BUSINESS_ONLINE}')"]
    assert DEPLOYER_SECRET not in done.stdout + done.stderr


def test_manifest_az_script_grants_consent_with_permission_grant(tenant, tmp_path):
    stack = write_stack(tmp_path, {"presencesync:syncUser": {"userPrincipalName": "sync@contoso.com", "create": True,
                                                             "licensedElsewhere": True},
                                   "presencesync:syncUserPassword": SECURE})
    done = run("manifest", "--config", str(stack), "--az-script", env=deployer_env(tenant))
    assert done.returncode == 0, done.stderr
    script = done.stdout
    assert "az ad app permission admin-consent" not in script.replace("'az ad app permission admin-consent' fails", "")
    assert f'az ad app permission grant --id "$APP_ID" --api {SKYPE_FOR_BUSINESS_ONLINE} --scope \'Contacts.ReadWrite User.ReadWrite\'' in script
    assert "--is-fallback-public-client true" in script and "--enable-id-token-issuance true" in script
    assert "az ad app owner add" in script and "--end-date 2" in script
    assert SKYPE_SCOPES["Contacts.ReadWrite"] in script
    syntax = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr


def test_manifest_without_credentials_fails_clearly():
    done = run("manifest")
    assert done.returncode == 1
    assert done.stderr.startswith("error: the IDs of Skype for Business Online Contacts.ReadWrite User.ReadWrite are not published")
    assert "ARM_CLIENT_ID" in done.stderr and "Traceback" not in done.stderr


def test_manifest_with_a_wrong_deployer_secret_fails_clearly(tenant):
    done = run("manifest", env={**deployer_env(tenant), "ARM_CLIENT_SECRET": "wrong"})
    assert done.returncode == 1
    assert "AADSTS7000215" in done.stderr and "wrong" not in done.stderr and "Traceback" not in done.stderr


def test_manifest_when_the_tenant_lacks_the_skype_service_principal(fake):
    fake.directory.add_app(App(DEPLOYER_APP, {DEPLOYER_SECRET}))
    done = run("manifest", env=deployer_env(fake))
    assert done.returncode == 1
    assert "404 Request_ResourceNotFound" in done.stderr and "az ad sp create" in done.stderr


def graph_stack(tmp_path: Path, **extra: object) -> Path:
    return write_stack(tmp_path, {"presencesync:profile": "graph", "presencesync:syncUserPassword": SECURE,
                                  "presencesync:syncUser": {"userPrincipalName": "s@contoso.com"},
                                  **{f"presencesync:{k}": v for k, v in extra.items()}})


def test_check_knows_the_graph_profile_and_rotation(tmp_path):
    done = run("check", "--config", str(graph_stack(tmp_path, secretRotationDays=180)))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "8 resources for profile graph, consent resource:"
    for expected in ["  AppRoleAssignment consent-microsoft-graph-presence-readwrite-all",
                     "  AppRoleAssignment consent-microsoft-graph-user-readbasic-all",
                     "  ApplicationPassword client-secret-a", "  ApplicationPassword client-secret-b"]:
        assert expected in lines
    assert "      appRoleId: 83cded22-8297-4ff6-a7fa-e97e9545a259" in lines
    assert "outputs: adminConsentUrl, applicationObjectId, clientSecretEndDate, directoryTenantId, nextSecretRotation, " \
        "novus, previousClientSecretEndDate, servicePrincipalObjectId" in lines


def test_manifest_of_the_graph_profile_needs_no_tenant_access(tmp_path):
    done = run("manifest", "--profile", "graph")  # no credentials in the environment: all IDs are published
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"resourceAppId": MICROSOFT_GRAPH, "resourceAccess": [
        {"id": "9c7a330d-35b3-4aa1-963d-cb2b9f927841", "type": "Scope"},
        {"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "type": "Scope"},
        {"id": "83cded22-8297-4ff6-a7fa-e97e9545a259", "type": "Role"},
        {"id": "97235f07-e226-4f63-ace3-39588e11d3a1", "type": "Role"}]}]
    assert run("manifest", "--config", str(graph_stack(tmp_path))).stdout == done.stdout
    script = run("manifest", "--config", str(graph_stack(tmp_path)), "--az-script").stdout
    # Per role: one GET to see whether it is assigned, one POST when not.
    assert script.count("--method POST --url \"$GRAPH/v1.0/servicePrincipals/$APP_SP_ID/appRoleAssignments\"") == 2
    assert "--is-fallback-public-client false" in script
    assert "--enable-access-token-issuance false" in script
    syntax = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr
    clash = run("manifest", "--profile", "graph", "--config", str(graph_stack(tmp_path)))
    assert clash.returncode == 1 and "drop --profile" in clash.stderr


@pytest.mark.parametrize("args", [(), ("check",), ("fleet", "sideways"), ("post-deploy", "--stack"),
                                  ("fleet", "preview", "--parallel", "0"), ("manifest", "--profile", "teams")])
def test_usage_errors_never_exit_2_which_means_drift(args):
    done = run(*args)
    assert done.returncode == 64, done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: ")


def test_check_runs_the_policy_pack_mandatory_as_errors_advisory_as_warnings(tmp_path):
    """So `check` passing means `pulumi preview --policy-pack policy` will not refuse the stack."""
    base = {"presencesync:syncUser": {"userPrincipalName": "sync@contoso.com"},
            "presencesync:syncUserPassword": SECURE}
    refused = run("check", "--config", str(write_stack(tmp_path, {
        **base, "presencesync:signInAudience": "AzureADMultipleOrgs", "presencesync:secretExpiry": "2036-01-01"})))
    assert refused.returncode == 1 and refused.stdout == ""
    errors = refused.stderr.splitlines()
    assert any(e.startswith("error: policy single-tenant-audience (application): ") for e in errors)
    assert any(e.startswith("error: policy secret-at-most-two-years (client-secret): ") for e in errors)
    never = run("check", "--config", str(write_stack(tmp_path, {**base, "presencesync:secretExpiry": "never"})))
    assert never.returncode == 1  # as a date 3.5 years out: one rule, one level
    assert never.stderr.startswith("error: policy secret-at-most-two-years (client-secret): the client secret never")
    warned = run("check", "--config", str(write_stack(tmp_path, {**base, "presencesync:profile": "graph",
                                                                 "presencesync:publicClient": True})))
    assert warned.returncode == 0
    assert warned.stderr.startswith("warning: policy public-client-only-for-ucwa (application): ")
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({"single-tenant-audience": {"allowMultiTenant": True},
                                  "secret-at-most-two-years": {"allowLongLived": True}}))
    assert run("check", "--config", str(write_stack(tmp_path, {**base, "presencesync:secretExpiry": "never"})),
               "--policy-pack-config", str(config)).returncode == 0
    allowed = run("check", "--config", str(write_stack(tmp_path, {
        **base, "presencesync:signInAudience": "AzureADMultipleOrgs"})), "--policy-pack-config", str(config))
    assert allowed.returncode == 0, allowed.stderr
