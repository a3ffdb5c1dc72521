"""The program with a collection of sync users, under the mock engine: every sync user owns the application,
created ones are licensed through the one licence group and never have their password expire; the first user
keeps the one-user form's resource names, so a stack moving to syncUsers keeps its user."""

from __future__ import annotations

import json

import pytest
from conftest import DEPLOYER, PASSWORD, SECRET, SYNC_USER_ID, stack_config

from presencesync.offline_plan import SecretValue, TenantFacts, run_program
from presencesync.provider_schema import diff

APP = "azuread:index/application:Application"
SP = "azuread:index/servicePrincipal:ServicePrincipal"
USER = "azuread:index/user:User"
GROUP = "azuread:index/group:Group"
LICENCE = "azuread:index/groupLicense:GroupLicense"
SKU = "18181a46-0d4e-45cd-891e-60aabd171b4e"
CHILD = "urn:pulumi:dev::presencesync::presencesync:index:Tenant$azuread:index/"


def created(upn: str) -> dict:
    return {"userPrincipalName": upn, "create": True, "usageLocation": "DK", "licenseSkuId": SKU}


def collection(facts: TenantFacts, users: list[dict], passwords: dict[str, str], **extra):
    config = {**stack_config(syncUser=None, syncUserPassword=None, **extra),
              "presencesync:syncUsers": json.dumps(users), "presencesync:syncUserPasswords": json.dumps(passwords)}
    return run_program(config, facts, secret_keys=SECRET, stack="dev")


def test_three_sync_users_two_created_one_existing(facts):
    result = collection(facts, [created("sync1@contoso.com"), created("sync2@contoso.com"),
                                {"userPrincipalName": "sync@contoso.com"}],
                        {"sync1@contoso.com": PASSWORD, "sync2@contoso.com": PASSWORD + "2", "sync@contoso.com": "x"})
    users = {u.inputs["userPrincipalName"]: u for u in result.of_type(USER)}
    assert set(users) == {"sync1@contoso.com", "sync2@contoso.com"}
    assert [users[u].name for u in sorted(users)] == ["sync-user", "sync-user-sync2-contoso-com"]
    assert all(u.inputs["disablePasswordExpiration"] is True for u in users.values())
    assert users["sync2@contoso.com"].inputs["password"] == SecretValue(PASSWORD + "2")
    group = result.one(GROUP)
    assert sorted(group.inputs["members"]) == sorted(u.id for u in users.values())
    assert result.one(LICENCE).inputs == {"groupObjectId": group.id, "skuId": SKU}
    owners = sorted({*(u.id for u in users.values()), SYNC_USER_ID, DEPLOYER})
    assert result.one(APP).inputs["owners"] == owners and result.one(SP).inputs["owners"] == owners
    assert len(owners) == 4  # three sync users and the deployer
    novus = result.outputs["novus"].value
    assert [u["userName"] for u in novus["syncUsers"]] == ["sync1@contoso.com", "sync2@contoso.com", "sync@contoso.com"]
    assert novus["userName"] == "sync1@contoso.com" and novus["password"] == PASSWORD


def test_moving_the_one_user_to_syncusers_keeps_every_resource_and_adds_the_second(facts):
    one = run_program(stack_config(syncUser=created("sync@contoso.com")), facts, secret_keys=SECRET, stack="dev")
    two = collection(facts, [created("sync@contoso.com"), created("sync2@contoso.com")],
                     {"sync@contoso.com": PASSWORD, "sync2@contoso.com": PASSWORD})
    before = {r.urn: r.inputs for r in one.resources}
    after = {r.urn: r.inputs for r in two.resources}
    assert set(after) - set(before) == {CHILD + "user:User::sync-user-sync2-contoso-com"}
    assert set(before) <= set(after)
    # The first user is declared exactly as before; the group only gains a member.
    first = CHILD + "user:User::sync-user"
    assert after[first] == before[first]
    licence_group = CHILD + "group:Group::sync-user-licence"
    # The provider updates a group's members in place (group_resource.go: members is a set, not ForceNew).
    assert diff(GROUP, before[licence_group], after[licence_group]).operation == "update"
    changes = {r.urn.removeprefix(CHILD): diff(r.type, before[r.urn], r.inputs).operation
               for r in two.resources if r.urn in before and r.type.startswith("azuread:")}
    # Only the owners (the new user joins them) and the group's members change, in place; nothing is replaced.
    assert {n for n, op in changes.items() if op != "same"} == {
        "application:Application::application", "servicePrincipal:ServicePrincipal::service-principal",
        "group:Group::sync-user-licence"}
    assert "replace" not in changes.values()
    assert {k: v for k, v in after[licence_group].items() if k != "members"} == \
        {k: v for k, v in before[licence_group].items() if k != "members"}


def test_a_password_the_cli_did_not_decrypt_stops_the_program(facts):
    """Pulumi.yaml cannot declare the passwords secret (a declared default would then fail the CLI's check), so
    the program refuses one the CLI hands over as plain text (not among PULUMI_CONFIG_SECRET_KEYS)."""
    from pulumi import RunError

    with pytest.raises(RunError, match=r"presencesync:syncUserPassword: is not encrypted; remove it from the stack "
                                       r"file and set it with pulumi config set --secret presencesync:syncUserPassword"):
        run_program(stack_config(), facts, secret_keys=())
    users = [created("sync1@contoso.com")]
    with pytest.raises(RunError, match=r"presencesync:syncUserPasswords: is not encrypted"):
        collection_secrets = {"presencesync:syncUsers": json.dumps(users),
                              "presencesync:syncUserPasswords": json.dumps({"sync1@contoso.com": PASSWORD})}
        run_program({**stack_config(syncUser=None, syncUserPassword=None), **collection_secrets}, facts,
                    secret_keys=("presencesync:syncUserPassword",))
