"""Every stack names its tenant, and everything that signs in for a stack signs in to exactly that tenant."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    PASSWORD,
    ROOT,
    SECURE,
    TENANT_ID,
    UPN,
    consent,
    deployer_env,
    outputs,
    post_deploy,
    run,
    write_stack,
)

OTHER_TENANT = "22222222-2222-4222-8222-222222222222"
STANDIN = ROOT / "tests" / "standin"


def check(tmp_path: Path, config: dict, *args: str):
    return run("check", "--config", str(write_stack(tmp_path, config)), *args)


def base(**extra) -> dict:
    return {"presencesync:syncUser": {"userPrincipalName": UPN}, "presencesync:syncUserPassword": SECURE, **extra}


def test_the_provider_keys_are_the_installed_providers_own():
    """pulumi-azuread's config module (pulumi_azuread/config/vars.py, generated from the provider's schema.json
    `config.variables`) reads each key by name; the list in config_keys.py is that list."""
    import pulumi_azuread.config.vars as provider_vars

    from presencesync.config_keys import PROVIDER_KEYS

    source = Path(provider_vars.__file__).read_text(encoding="utf-8")
    assert tuple(sorted(re.findall(r"__config__\.get\w*\('(\w+)'\)", source))) == PROVIDER_KEYS


def test_check_requires_the_tenant_naming_the_key_and_the_command(tmp_path):
    done = check(tmp_path, base(**{"azuread:tenantId": None}))
    assert done.returncode == 1
    assert ("error: azuread:tenantId: is missing; every stack names its tenant: set the customer's directory "
            "(tenant) ID with pulumi config set azuread:tenantId <GUID>") in done.stderr.splitlines()


@pytest.mark.parametrize("value", ["contoso.onmicrosoft.com", f"{TENANT_ID}\nBASH_ENV=x", f" {TENANT_ID}"])
def test_a_tenant_that_is_no_guid_is_refused(tmp_path, value):
    done = check(tmp_path, base(**{"azuread:tenantId": value}))
    assert done.returncode == 1 and "error: azuread:tenantId: '" in done.stderr
    assert "is not a tenant ID (GUID)" in done.stderr and "Traceback" not in done.stderr


def test_a_misspelt_provider_key_is_an_error_with_a_suggestion(tmp_path):
    done = check(tmp_path, base(**{"azuread:tenantId": None, "azuread:tenantid": TENANT_ID}))
    assert done.returncode == 1
    assert ("error: azuread:tenantid: not a configuration key of the azuread provider (did you mean 'tenantId'?); "
            "correct its name or remove it") in done.stderr.splitlines()
    done = check(tmp_path, base(**{"azuread:enviroment": "public"}))
    assert "(did you mean 'environment'?)" in done.stderr


@pytest.mark.parametrize("key", ["metadataHost", "oidcRequestUrl", "useCli", "clientSecret", "useMsi",
                                 "clientCertificatePath"])
def test_provider_keys_that_move_the_sign_in_are_refused(tmp_path, key):
    done = check(tmp_path, base(**{f"azuread:{key}": "https://attacker.example"}))
    assert done.returncode == 1
    assert (f"error: azuread:{key}: chooses how or where the azuread provider signs in (credentials or sign-in "
            "endpoints), which a stack file must not decide; remove it") in done.stderr


def test_the_example_stack_names_its_tenant():
    text = (ROOT / "Pulumi.dev.yaml").read_text()
    if not text:
        pytest.skip("no example stack")
    assert re.search(r"^  azuread:tenantId: [0-9a-f-]{36}\b", text, re.MULTILINE)


# `secure:` values: which stack's secrets provider can decrypt them.

def test_a_ciphertext_copied_from_another_stack_is_refused(tmp_path):
    """The passphrase and cloud managers write v1:<nonce>:<ciphertext> and mark the stack file with
    encryptionsalt (pkg/secrets/passphrase/manager.go, EditProjectStack) or secretsprovider + encryptedkey
    (pkg/secrets/cloud/manager.go, EditProjectStack); without either, the value belongs to another stack."""
    copied = {"secure": "v1:yNulcsuiSG9uBpaB:mG4FbUFZOtPVJ1HrQUbeubzZkrOjd8mboMV1Kux3jDBxu1l32RM="}
    done = check(tmp_path, base(**{"presencesync:syncUserPassword": copied}))
    assert done.returncode == 1
    assert ("error: presencesync:syncUserPassword: secure: holds a ciphertext (v1:...) but the stack file has neither "
            "encryptionsalt nor encryptedkey") in done.stderr
    # The same value in a stack with its salt passes.
    path = tmp_path / "Pulumi.salted.yaml"
    path.write_text(json.dumps({"encryptionsalt": "v1:uXqzZj9Boco=:v1:stu4hujW+ejL2lfG:itXEfKS6qr9E9LaeHk6ruJvV3/89hw==",
                                "config": {"azuread:tenantId": TENANT_ID, **base(**{"presencesync:syncUserPassword": copied})}}))
    assert run("check", "--config", str(path)).returncode == 0


@pytest.mark.parametrize("value", ["CHANGE-ME", "", "v1:x"])
def test_a_secure_value_that_is_no_ciphertext_is_refused(tmp_path, value):
    done = check(tmp_path, base(**{"presencesync:syncUserPassword": {"secure": value}}))
    assert done.returncode == 1 and "error: presencesync:syncUserPassword: secure: " in done.stderr
    assert "pulumi config set --secret" in done.stderr


def test_a_changed_secrets_provider_is_called_out_against_the_base_branch(tmp_path):
    before = tmp_path / "base.yaml"
    before.write_text(json.dumps({"secretsprovider": "azurekeyvault://partner-kv.vault.azure.net/keys/ps",
                                  "encryptedkey": "a2V5", "config": {}}))
    head = tmp_path / "Pulumi.t.yaml"
    head.write_text(json.dumps({"secretsprovider": "azurekeyvault://attacker-kv.vault.azure.net/keys/ps",
                                "encryptedkey": "b3RoZXI=", "config": {"azuread:tenantId": TENANT_ID, **base()}}))
    done = run("check", "--config", str(head), "--against", str(before))
    lines = [line for line in done.stderr.splitlines() if line.startswith("warning: Pulumi.t.yaml:")]
    assert lines == [
        "warning: Pulumi.t.yaml: secretsprovider changes (from 'azurekeyvault://partner-kv.vault.azure.net/keys/ps' to "
        "'azurekeyvault://attacker-kv.vault.azure.net/keys/ps'): this moves where the stack's secrets are decrypted; "
        "a reviewer must confirm it was meant (pulumi stack change-secrets-provider)",
        "warning: Pulumi.t.yaml: encryptedkey changes (its value): this moves where the stack's secrets are "
        "decrypted; a reviewer must confirm it was meant (pulumi stack change-secrets-provider)"]
    # Unchanged, or a new stack (no base file): nothing to call out.
    shutil.copy(head, before)
    assert "warning: Pulumi.t.yaml" not in run("check", "--config", str(head), "--against", str(before)).stderr
    assert "warning: Pulumi.t.yaml" not in run("check", "--config", str(head), "--against",
                                               str(tmp_path / "none.yaml")).stderr


# Signing in: the stack's tenant, whatever the environment says.

@pytest.fixture
def tenant(tenant):
    """conftest's tenant, with the sync user and the new app it owns."""
    from fake_entra import App, User

    user = User(UPN, PASSWORD)
    tenant.directory.users[UPN] = user
    tenant.directory.add_app(App(CLIENT_ID, {CLIENT_SECRET}, owners={user.id}))
    return tenant


def test_post_deploy_signs_in_to_the_stacks_tenant_and_sets_the_environments_aside(tenant, tmp_path):
    """The fake serves every tenant path; what matters is which tenant the token requests name."""
    consent(tenant)
    stack = write_stack(tmp_path, {"azuread:tenantId": tenant.directory.tenant_id, **base(**{
        "presencesync:consent": "hook", "presencesync:postDeployTimeout": 60})})
    (tmp_path / "outputs.json").write_text(json.dumps(outputs(tenant)))
    done = run("post-deploy", "--config", str(stack), "--outputs", str(tmp_path / "outputs.json"), "--check",
               env={**deployer_env(tenant), "ARM_TENANT_ID": OTHER_TENANT})
    token_paths = {s.path for s in tenant.directory.seen if s.path.endswith("/oauth2/v2.0/token")}
    assert token_paths == {f"/{tenant.directory.tenant_id}/oauth2/v2.0/token"}, done.stderr
    assert (f"note: t: ARM_TENANT_ID {OTHER_TENANT} set aside: the stack runs in its own tenant "
            f"{tenant.directory.tenant_id} (azuread:tenantId)") in done.stderr.splitlines()


def test_post_deploy_refuses_outputs_of_another_tenant(tenant, tmp_path):
    outs = outputs(tenant)
    outs["directoryTenantId"] = OTHER_TENANT
    done = post_deploy(tenant, tmp_path, "--check", outs=outs)
    assert done.returncode == 1
    assert (f"error: the stack's outputs are from tenant {OTHER_TENANT}, but azuread:tenantId is "
            f"{tenant.directory.tenant_id}") in done.stderr


def test_fleet_never_runs_a_stack_without_its_tenant_as_the_environments(tmp_path):
    """Reproduced on the old code: customer-e (no azuread:tenantId) ran as the environment's tenant."""
    directory = tmp_path / "repo"
    directory.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", directory / "Pulumi.yaml")
    (directory / "Pulumi.customer-b.yaml").write_text(json.dumps({"config": {"azuread:tenantId": TENANT_ID, **base()}}))
    (directory / "Pulumi.customer-e.yaml").write_text(json.dumps({"config": {"azuread:tenantid": TENANT_ID, **base()}}))
    (tmp_path / "scenario.json").write_text(json.dumps({"customer-b": {}, "customer-e": {}}))
    done = run("fleet", "preview", "--project-dir", str(directory), env={
        "PATH": f"{STANDIN}{os.pathsep}{os.path.dirname(sys.executable)}", "ARM_TENANT_ID": OTHER_TENANT,
        "FAKE_PULUMI_SCENARIO": str(tmp_path / "scenario.json"), "FAKE_PULUMI_LOG": str(tmp_path / "calls.jsonl")})
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    ran = {(c["stack"], c["tenant"]) for c in calls if c["argv"][0] == "preview"}
    assert ran == {("customer-b", TENANT_ID)}, done.stderr
    assert "customer-e: failed, 0 change(s)" in done.stderr
    assert "Pulumi.customer-e.yaml: azuread:tenantId is missing" in done.stderr


def test_pipeline_env_blames_the_missing_client_id_not_the_tenant(tmp_path):
    (tmp_path / "Pulumi.customer-a.yaml").write_text(json.dumps({"config": {"azuread:tenantId": TENANT_ID}}))
    from presencesync.fleet import CliError, deployer_env

    with pytest.raises(CliError) as raised:
        deployer_env("customer-a", tmp_path, {"ARM_TENANT_ID": OTHER_TENANT})
    assert str(raised.value).startswith("ARM_CLIENT_ID is not set and Pulumi.customer-a.yaml sets no azuread:clientId")
    # And the other way round: the deployer app is there, the stack names no tenant.
    (tmp_path / "Pulumi.customer-a.yaml").write_text(json.dumps({"config": {"azuread:tenantid": TENANT_ID}}))
    with pytest.raises(CliError) as raised:
        deployer_env("customer-a", tmp_path, {"ARM_CLIENT_ID": TENANT_ID, "ARM_TENANT_ID": OTHER_TENANT})
    assert str(raised.value).startswith("Pulumi.customer-a.yaml: azuread:tenantId is missing")


def test_the_oidc_error_names_the_missing_variable():
    from presencesync.clouds import endpoints_for
    from presencesync.credentials import CredentialsError, graph_token_source

    for env, missing in (({"ARM_TENANT_ID": TENANT_ID}, "ARM_CLIENT_ID is not"),
                         ({"ARM_CLIENT_ID": TENANT_ID}, "ARM_TENANT_ID is not"),
                         ({}, "ARM_CLIENT_ID and ARM_TENANT_ID are not")):
        with pytest.raises(CredentialsError, match=f"ARM_USE_OIDC is set but {missing}"):
            graph_token_source(endpoints_for("public", {}), {"ARM_USE_OIDC": "true", **env})


def test_the_azure_clis_default_tenant_is_set_aside(tmp_path, monkeypatch):
    """A recording stand-in for az: `az account show --query tenantId --output tsv` prints the signed-in
    default tenant; `az account get-access-token --tenant T` answers a token for T (azure-cli's
    `account show` and `account get-access-token`, whose JSON carries accessToken and expires_on)."""
    from presencesync.stack_tenant import _az_default_tenant, deployer_token_source, stack_file_deployer

    log = tmp_path / "az.log"
    stub = tmp_path / "bin" / "az"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\ncase "$1 $2" in\n'
                    f'  "account show") echo {OTHER_TENANT};;\n'
                    '  "account get-access-token") echo \'{"accessToken": "t0ken", "expires_on": 9999999999}\';;\n'
                    'esac\n')
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub.parent}{os.pathsep}/usr/bin{os.pathsep}/bin")
    _az_default_tenant.cache_clear()
    (tmp_path / "Pulumi.customer-a.yaml").write_text(json.dumps({"config": {"azuread:tenantId": TENANT_ID}}))
    deployer = stack_file_deployer("customer-a", tmp_path, {})
    assert deployer.set_aside == (f"customer-a: the Azure CLI's default tenant {OTHER_TENANT} set aside: signing in "
                                  f"to the stack's tenant {TENANT_ID} (azuread:tenantId)",)
    assert deployer_token_source(deployer, "public").token() == "t0ken"
    token_calls = [line for line in log.read_text().splitlines() if line.startswith("account get-access-token")]
    assert len(token_calls) == 1 and token_calls[0].endswith(f"--tenant {TENANT_ID}")
    _az_default_tenant.cache_clear()


def test_the_post_deploy_step_in_pulumi_up_signs_in_to_the_stacks_tenant(tenant, tmp_path, monkeypatch):
    """Within `pulumi up` the step runs in the program's process, whose environment may name another tenant;
    the azuread provider signs in to azuread:tenantId (ARM_TENANT_ID is only the default of its tenant_id:
    terraform-provider-azuread internal/provider/provider.go, `AzureADProvider`, `schema.EnvDefaultFunc`), and
    so does the step (consent: hook, the deployer's token)."""
    import asyncio

    from presencesync.config import load_settings
    from presencesync.handover import post_deploy_step

    consent(tenant)
    for key, value in {**deployer_env(tenant), "ARM_TENANT_ID": OTHER_TENANT}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"azuread:tenantId": tenant.directory.tenant_id, "presencesync:consent": "hook",
                              "presencesync:syncUserPassword": PASSWORD,
                              "presencesync:syncUser": json.dumps({"userPrincipalName": UPN})},
                             now=datetime.now(UTC))
    asyncio.run(post_deploy_step(settings)(outputs(tenant)))
    token_paths = {s.path for s in tenant.directory.seen if s.path.endswith("/oauth2/v2.0/token")}
    assert token_paths == {f"/{tenant.directory.tenant_id}/oauth2/v2.0/token"}
