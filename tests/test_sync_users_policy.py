"""The policy pack knows Novus's collection of sync users: a stack policy over the real program's registrations
(three sync users under the mock engine), compliant as the program declares them, refused when altered."""

from __future__ import annotations

import json
from typing import Any

from conftest import DEPLOYER, PASSWORD, SECRET, stack_config
from pulumi_policy import PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions, StackValidationArgs

from presencesync import policies
from presencesync.offline_plan import Plan, TenantFacts, run_program
from presencesync.policy_check import _plain, run_policies

SKU = "18181a46-0d4e-45cd-891e-60aabd171b4e"
USERS = [{"userPrincipalName": f"sync{i}@contoso.com", "create": True, "usageLocation": "DK", "licenseSkuId": SKU}
         for i in (1, 2)] + [{"userPrincipalName": "sync@contoso.com"}]


def _config(**extra: str) -> dict[str, str]:
    return {**stack_config(syncUser=None, syncUserPassword=None), "presencesync:syncUsers": json.dumps(USERS),
            "presencesync:syncUserPasswords": json.dumps({u["userPrincipalName"]: PASSWORD for u in USERS}), **extra}


def _check(plan: Plan, config: dict[str, str], alter: Any = None) -> list[str]:
    resources = []
    for r in plan.resources:
        props = {**_plain(r.inputs), "objectId": str(r.id).rpartition("/")[2]}
        resources.append(PolicyResource(r.type, alter(r.type, props) if alter else props, r.urn, r.name,
                                        PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), []),
                                        None, None, [], {}))
    found: list[str] = []
    policies.sync_user_collection(lambda: config)(StackValidationArgs(resources, {}),
                                                 lambda message, urn=None: found.append(message))
    return found


def test_the_collection_as_declared_passes_and_check_runs_the_stack_policy(facts: TenantFacts):
    config = _config()
    plan = run_program(config, facts, secret_keys=SECRET)
    assert _check(plan, config) == []
    # check runs it on the plan with the stack's config (the other policies are tested with the tenant's IDs).
    def collection_violations(values: dict[str, str]) -> list[str]:
        return [v.message for v in run_policies(plan, DEPLOYER, {}, values) if v.policy == "sync-user-collection"]

    assert collection_violations(config) == []
    assert collection_violations({**config, "presencesync:watchedUsers": "5000"})[0].startswith(
        "presencesync:syncUsers: 5000 watched users need 20 sync users")


def test_a_sync_user_not_owner_or_unlicensed_or_too_few_is_refused(facts: TenantFacts):
    config = _config()
    plan = run_program(config, facts, secret_keys=SECRET)
    sync2 = next(r for r in plan.resources if r.inputs.get("userPrincipalName") == "sync2@contoso.com")

    def without_sync2(kind: str, props: dict[str, Any]) -> dict[str, Any]:
        if kind == policies.APPLICATION:
            return {**props, "owners": [o for o in props["owners"] if o != sync2.id]}
        if kind == policies.GROUP:
            return {**props, "members": [m for m in props["members"] if m != sync2.id]}
        return props

    assert _check(plan, config, without_sync2) == [
        "sync user sync2@contoso.com has no licence: it is not in the licence group (syncUsers licenseSkuId)",
        "sync user sync2@contoso.com does not own the application",
        "the application has 3 owners, fewer than its 3 sync users and the deployer: every sync user must own it"]
    assert _check(plan, {**config, "presencesync:watchedUsers": "1000"}) == [
        "presencesync:syncUsers: 1000 watched users need 4 sync users with profile ucwa (250 each), and the stack "
        "has 3; add 1 to presencesync:syncUsers (with their passwords in presencesync:syncUserPasswords)"]
