"""`pulumi up`'s hook order, as the engine has it: the post-deploy hook must finish.

The monitor (offline_plan `_run_after_create_hook`) calls after_create hooks the way the engine does
(pkg/resource/deploy/step.go `CreateStep.Apply`: the hooks run after the provider's create and before
the step's `complete` answers the program's RegisterResource; deployment.go `RunHooks` waits with no
timeout; source_eval.go `wrapResourceHookCallback` sends `Callbacks.Invoke` with a ResourceHookRequest).
The provider is modelled by a create that writes into the loopback fake directory, so the hook's
post-deploy proves sign-in against what the program declared.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pulumi
import pytest
from conftest import GRAPH_ROLES, GRAPH_SCOPES, PASSWORD, SKYPE_SCOPES, stack_config
from fake_entra import App, Directory, FakeEntra, User

from presencesync.offline_plan import Plan, ResourceApi, TenantFacts, run_program
from presencesync.permissions import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE

UPN = "sync@contoso.com"
SECRET = "generated-secret~value"
HOOK_TIMEOUT = 30.0
GRANT_DELAY = 0.5  # the provider's create of a consent grant takes a while, as Graph does


def directory_provider(d: Directory):
    """Stands for the azuread provider: each create lands in the fake directory."""
    def create(type_token: str, name: str, state: dict[str, Any]) -> dict[str, Any]:
        kind = type_token.rsplit(":", 1)[-1]
        with d.lock:
            if kind == "Application":
                app = d.add_app(App(state["clientId"], set(), owners=set(state["owners"]),
                                    public_client=state["fallbackPublicClientEnabled"]), with_service_principal=False)
                state["objectId"] = app.object_id
            elif kind == "ServicePrincipal":
                d.service_principals[state["clientId"]] = {"id": state["objectId"], "appId": state["clientId"],
                                                           "oauth2PermissionScopes": [], "appRoles": []}
            elif kind == "ApplicationPassword":
                app = next(a for a in d.apps.values() if state["applicationId"].endswith(a.object_id))
                app.secrets.add(SECRET)
                state["value"] = SECRET
        if kind == "ServicePrincipalDelegatedPermissionGrant":
            time.sleep(GRANT_DELAY)
            with d.lock:
                grant = {"id": state["objectId"], "clientId": state["servicePrincipalObjectId"],
                         "resourceId": state["resourceServicePrincipalObjectId"], "consentType": "AllPrincipals",
                         "principalId": None, "scope": " ".join(state["claimValues"])}
                d.grants[grant["id"]] = grant
        elif kind == "AppRoleAssignment":
            time.sleep(GRANT_DELAY)
            with d.lock:
                d.role_assignments[state["objectId"]] = {
                    "id": state["objectId"], "principalId": state["principalObjectId"],
                    "resourceId": state["resourceObjectId"], "appRoleId": state["appRoleId"]}
        return state
    return create


@pytest.fixture
def tenant(fake: FakeEntra, monkeypatch, tmp_path: Path) -> tuple[FakeEntra, TenantFacts]:
    d = fake.directory
    skype = d.add_resource_api(SKYPE_FOR_BUSINESS_ONLINE, SKYPE_SCOPES)
    graph = d.add_resource_api(MICROSOFT_GRAPH, GRAPH_SCOPES, GRAPH_ROLES)
    user = d.users[UPN] = User(UPN, PASSWORD)
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # the hook writes the hand-over file into the working directory
    facts = TenantFacts(
        tenant_id=d.tenant_id, deployer_object_id="0a1b2c3d-0000-4000-8000-00000000de01",
        default_domain="contoso.onmicrosoft.com",
        resource_apis={SKYPE_FOR_BUSINESS_ONLINE: ResourceApi(skype, SKYPE_SCOPES),
                       MICROSOFT_GRAPH: ResourceApi(graph, GRAPH_SCOPES, GRAPH_ROLES)},
        users={UPN: user.id})
    return fake, facts


def up(facts: TenantFacts, fake: FakeEntra, **overrides: Any) -> Plan:
    return run_program(stack_config(**overrides), facts, secret_keys=("presencesync:syncUserPassword",),
                       stack="t", hook_timeout=HOOK_TIMEOUT, provider=directory_provider(fake.directory))


@pytest.mark.parametrize("profile", ["ucwa", "graph"])
def test_post_deploy_hook_finishes_under_the_engines_order_and_hands_over(tenant, tmp_path, profile):
    fake, facts = tenant
    plan = up(facts, fake, profile=profile, postDeployTimeout="60")
    assert plan.hook_errors == []
    handed_over = json.loads((tmp_path / "novus-config.t.json").read_text())
    assert handed_over["clientSecret"] == SECRET
    assert handed_over["clientId"] == plan.one("azuread:index/application:Application").inputs.get(
        "clientId", handed_over["clientId"])
    assert handed_over["tenantId"] == "contoso.onmicrosoft.com"
    # It ran once consent existed: the grants were created while the hook waited for them.
    assert fake.directory.grants


def test_a_failing_post_deploy_fails_the_deployment(tenant, tmp_path):
    fake, facts = tenant
    fake.directory.users[UPN].sign_in_error = 50076
    plan = up(facts, fake, postDeployTimeout="5")
    assert len(plan.hook_errors) == 1
    assert "after hook 'post-deploy' of client-secret failed" in plan.hook_errors[0]
    assert "AADSTS50076" in plan.hook_errors[0]
    assert not (tmp_path / "novus-config.t.json").exists()


def test_the_model_catches_a_hook_that_awaits_its_own_resource(tenant):
    """A hook that waits on an Output of the resource it is bound to never returns under the engine."""
    fake, facts = tenant

    def program() -> None:
        import pulumi_azuread as azuread

        holder: dict[str, Any] = {}

        async def hook(_: pulumi.ResourceHookArgs) -> None:
            await holder["app"].client_id.future()

        binding = pulumi.ResourceHookBinding(after_create=[pulumi.ResourceHook("waits-on-itself", hook)])
        holder["app"] = azuread.Application("application", display_name="x", owners=[],
                                            fallback_public_client_enabled=False,
                                            opts=pulumi.ResourceOptions(hooks=binding))

    plan = run_program({}, facts, program=program, hook_timeout=1.0, provider=directory_provider(fake.directory))
    assert plan.hook_errors == ["after hook 'waits-on-itself' of application: did not return within 1 s "
                                "(the engine waits for ever: pulumi up would hang)"]


def test_the_secret_is_created_beside_the_consent_three_creates_at_most_in_a_row(plan):
    result = plan()
    by_urn = {f"{r.parent}${r.type}::{r.name}": r for r in result.resources}
    by_name = {r.name: r for r in result.resources}

    def chain(r) -> int:
        own = [d for d in r.depends_on if not d.endswith("Tenant::dev")]
        return 1 + max((chain(by_name[d.rsplit("::", 1)[-1]]) for d in own), default=0)

    assert by_urn  # the registrations are there
    secret = by_name["client-secret"]
    assert {d.rsplit("::", 1)[-1] for d in secret.depends_on} == {"application"}
    assert max(chain(r) for r in result.resources if r.type.startswith("azuread:")) == 3
