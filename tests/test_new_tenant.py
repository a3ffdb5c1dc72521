"""`new-tenant`: a minimal stack file, the next commands (or the stand-in CLI running them), check's verdict;
and rotation dates spread across a fleet by the offset it writes."""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pulumi
import pytest
from conftest import ROOT, run

from presencesync.stack_file import read_stack_config

STANDIN = ROOT / "tests" / "standin"
TENANT_A = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
TENANT_B = "9b2c1f7e-55aa-4c0e-8f3d-2a6b7c8d9e0f"
KEY_VAULT = "azurekeyvault://partner-kv.vault.azure.net/keys/presencesync-secrets"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    directory = tmp_path / "repo"
    directory.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", directory / "Pulumi.yaml")
    return directory


def new_tenant(repo: Path, *args: str, env: dict[str, str] | None = None):
    return run("new-tenant", *args, "--project-dir", str(repo), env=env)


def test_a_graph_tenant_gets_a_minimal_file_the_next_commands_and_checks_verdict(repo):
    done = new_tenant(repo, "customer-a", "--tenant-id", TENANT_A, "--profile", "graph", "--sync-user",
                      "sync@customer-a.com")
    assert done.returncode == 0, done.stderr
    stack = read_stack_config(repo / "Pulumi.customer-a.yaml")
    # Only what differs from Pulumi.yaml's defaults, and no ciphertext.
    assert stack.values == {"azuread:tenantId": TENANT_A, "presencesync:profile": "graph",
                            "presencesync:syncUser": '{"userPrincipalName":"sync@customer-a.com"}'}
    assert stack.encrypted == frozenset() and stack.problems == ()
    assert "secure" not in (repo / "Pulumi.customer-a.yaml").read_text()
    lines = done.stdout.splitlines()
    assert "new-tenant:   pulumi stack init customer-a" in lines
    assert "new-tenant:   pulumi config set --secret presencesync:syncUserPassword --stack customer-a" in lines
    verdict = [line for line in lines if line.startswith("check: ")]
    assert len(verdict) == 1 and verdict[0].startswith("check: presencesync:syncUserPassword: ")


def test_a_created_sync_user_and_a_one_year_secret(repo):
    done = new_tenant(repo, "customer-c", "--tenant-id", TENANT_B, "--profile", "ucwa", "--sync-user",
                      "presencesync@customer-c.com", "--create-sync-user", "--licence-sku",
                      "18181a46-0d4e-45cd-891e-60aabd171b4e", "--usage-location", "NO", "--secret-expiry", "1y")
    assert done.returncode == 0, done.stderr
    values = read_stack_config(repo / "Pulumi.customer-c.yaml").values
    assert "presencesync:profile" not in values  # ucwa is the default
    assert json.loads(values["presencesync:syncUser"]) == {
        "userPrincipalName": "presencesync@customer-c.com", "create": True,
        "licenseSkuId": "18181a46-0d4e-45cd-891e-60aabd171b4e", "usageLocation": "NO"}  # NO stays a string
    assert values["presencesync:secretExpiry"] == "1y"


@pytest.mark.parametrize(("args", "message"), [
    (["--tenant-id", "contoso.onmicrosoft.com"], "error: --tenant-id 'contoso.onmicrosoft.com' is not a tenant ID"),
    (["--tenant-id", TENANT_A, "--create-sync-user"], "error: the stack would not pass check: "
                                                       "presencesync:syncUser.licenseSkuId: is required"),
    (["--tenant-id", TENANT_A, "--usage-location", "DK"], "error: --licence-sku and --usage-location apply only"),
    (["--tenant-id", TENANT_A, "--rotate-days", "7"], "error: the stack would not pass check: "
                                                      "presencesync:secretRotationDays: '7' is not"),
])
def test_bad_arguments_write_nothing(repo, args, message):
    done = new_tenant(repo, "customer-x", "--profile", "graph", "--sync-user", "sync@x.com", *args)
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert not (repo / "Pulumi.customer-x.yaml").exists()


def test_a_bad_stack_name_or_an_existing_file_is_refused(repo):
    base = ["--tenant-id", TENANT_A, "--profile", "graph", "--sync-user", "sync@x.com"]
    done = new_tenant(repo, "acme$(id)", *base)
    assert done.returncode == 1 and "error: 'acme$(id)' is not a stack name" in done.stderr
    (repo / "Pulumi.customer-a.yaml").write_text("config: {}\n")
    done = new_tenant(repo, "customer-a", *base)
    assert done.returncode == 1 and "exists already" in done.stderr
    assert (repo / "Pulumi.customer-a.yaml").read_text() == "config: {}\n"


def test_with_a_logged_in_cli_the_stack_is_created_with_the_repositorys_secrets_provider(repo, tmp_path):
    """The stand-in CLI (tests/standin/pulumi) answers `whoami` as a logged-in CLI does and logs each call."""
    (repo / "Pulumi.customer-b.yaml").write_text(json.dumps({"secretsprovider": KEY_VAULT, "encryptedkey": "a2V5",
                                                             "config": {}}))
    (tmp_path / "scenario.json").write_text("{}")
    done = new_tenant(repo, "customer-a", "--tenant-id", TENANT_A, "--profile", "graph", "--sync-user", "s@a.com",
                      env={"PATH": f"{STANDIN}{os.pathsep}{os.path.dirname(sys.executable)}",
                           "FAKE_PULUMI_SCENARIO": str(tmp_path / "scenario.json"),
                           "FAKE_PULUMI_LOG": str(tmp_path / "calls.jsonl")})
    assert done.returncode == 0, done.stderr
    calls = [json.loads(line)["argv"] for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert calls == [["whoami"], ["stack", "init", "customer-a", "--secrets-provider", KEY_VAULT]]
    assert f"new-tenant: ran pulumi stack init customer-a --secrets-provider {KEY_VAULT}" in done.stdout
    # No terminal: the password prompt is left to the user, with the exact command.
    assert ("new-tenant: next: pulumi config set --secret presencesync:syncUserPassword --stack customer-a"
            in done.stdout.splitlines())


# Rotation spread across a fleet (issue 20): new stacks get an offset derived from the tenant ID.

def _settings(path: Path, day: date):
    from presencesync.project_config import stack_settings

    config = path.read_text() + "  presencesync:syncUserPassword:\n    secure: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    path.write_text(config)
    settings, _, _ = stack_settings(path, path.stem.removeprefix("Pulumi."), datetime.combine(day, time(), UTC))
    return settings


def test_two_new_tenants_with_the_same_period_rotate_on_different_days(repo):
    from presencesync.client_secrets import spread_offset

    for name, tenant in (("customer-a", TENANT_A), ("customer-b", TENANT_B)):
        done = new_tenant(repo, name, "--tenant-id", tenant, "--profile", "graph", "--sync-user", "s@a.com",
                          "--rotate-days", "180")
        assert done.returncode == 0, done.stderr
    offsets = {name: read_stack_config(repo / f"Pulumi.{name}.yaml").values["presencesync:secretRotationOffsetDays"]
               for name in ("customer-a", "customer-b")}
    assert offsets == {"customer-a": str(spread_offset(TENANT_A, 180)), "customer-b": str(spread_offset(TENANT_B, 180))}
    day = date(2026, 11, 26)
    a, b = (_settings(repo / f"Pulumi.{name}.yaml", day).client_secrets for name in ("customer-a", "customer-b"))
    assert a.next_rotation != b.next_rotation
    # Each keeps its own schedule: a new secret every 180 days, on its own day.
    for plan, tenant in ((a, TENANT_A), (b, TENANT_B)):
        days = (datetime.fromisoformat(plan.next_rotation.replace("Z", "+00:00")).date() - date(1970, 1, 1)).days
        assert days % 180 == spread_offset(tenant, 180)


def test_offsets_spread_evenly_and_stay_the_same_for_a_tenant():
    import uuid

    from presencesync.client_secrets import spread_offset

    tenants = [str(uuid.UUID(int=i * 7919 + 12345, version=4)) for i in range(900)]
    counts = [0] * 30
    for tenant in tenants:
        assert spread_offset(tenant, 30) == spread_offset(tenant.upper(), 30)
        counts[spread_offset(tenant, 30)] += 1
    assert min(counts) >= 10  # 30 per day expected; no day left empty or crowded
    assert max(counts) <= 60


def test_an_offset_needs_rotation_and_stays_below_the_period(tmp_path):
    from conftest import write_stack

    base = {"presencesync:syncUser": {"userPrincipalName": "s@a.com"},
            "presencesync:syncUserPassword": {"secure": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}}
    done = run("check", "--config", str(write_stack(tmp_path, {**base, "presencesync:secretRotationOffsetDays": 5})))
    assert "error: presencesync:secretRotationOffsetDays: applies only with presencesync:secretRotationDays" \
        in done.stderr
    done = run("check", "--config", str(write_stack(tmp_path, {
        **base, "presencesync:secretRotationDays": 90, "presencesync:secretRotationOffsetDays": 90})))
    assert "error: presencesync:secretRotationOffsetDays: '90' is not a whole number of days from 0 to 89" \
        in done.stderr


# The example stacks keep exactly their secrets across the upgrade: the same resources and the same
# secret inputs as before offsets existed (recorded on 2026-11-26 from main at 28aa9a0, before this change).
BEFORE = {
    "expiry": (["application", "client-secret", "sync-user-licence", "sync-user-licence", "service-principal",
                "consent-microsoft-graph", "consent-skype-for-business-online", "sync-user", "dev"],
               {"client-secret": {"endDate": "2028-11-26T00:00:00Z", "rotateWhenChanged": {"secretExpiry": "2y"},
                                  "displayName": "presencesync (Novus)"}}),
    "rotation": (["application", "client-secret-a", "client-secret-b", "sync-user-licence", "sync-user-licence",
                  "service-principal", "consent-microsoft-graph", "consent-skype-for-business-online", "sync-user",
                  "dev"],
                 {"client-secret-a": {"endDate": "2027-03-03T00:00:00Z",
                                      "rotateWhenChanged": {"generation": "114", "rotationDays": "180"},
                                      "displayName": "presencesync (Novus)"},
                  "client-secret-b": {"endDate": "2027-08-30T00:00:00Z",
                                      "rotateWhenChanged": {"generation": "115", "rotationDays": "180"},
                                      "displayName": "presencesync (Novus)"}}),
}


@pytest.mark.parametrize("variant", ["expiry", "rotation"])
def test_the_example_stacks_keep_their_resources_and_secrets(facts, variant):
    from conftest import EXAMPLE_STACK, SYNC_USER_ID

    from presencesync.config import from_pulumi
    from presencesync.offline_plan import TenantFacts, run_program
    from presencesync.project_config import apply_gate, load_project
    from presencesync.tenant import Tenant

    if not EXAMPLE_STACK.exists():
        pytest.skip("no example stack")
    stack = read_stack_config(EXAMPLE_STACK)
    values, _ = apply_gate(load_project(), "dev", stack)
    if variant == "rotation":  # the example's commented-out alternative
        values.update({"presencesync:secretRotationDays": "180", "presencesync:secretExpiry": ""})
    day = date(2026, 11, 26)

    def program() -> None:
        from presencesync.handover import post_deploy_step

        Tenant(pulumi.get_stack(), from_pulumi(now=datetime.combine(day, time(), UTC) + timedelta(hours=13)),
               post_deploy_step)

    example_facts = TenantFacts(facts.tenant_id, facts.deployer_object_id, facts.default_domain,
                                facts.resource_apis, {"presencesync@contoso.com": SYNC_USER_ID})
    plan = run_program(values, example_facts, secret_keys=tuple(stack.encrypted), program=program)
    names = sorted(r.name for r in plan.resources)
    secrets = {r.name: {k: v for k, v in r.inputs.items() if k != "applicationId"}
               for r in plan.resources if r.type.endswith("ApplicationPassword")}
    assert (names, secrets) == (sorted(BEFORE[variant][0]), BEFORE[variant][1])
