"""`pulumi up`'s hook order, as the engine has it: post-deploy runs once per deployment that changed the tenant.

The monitor (offline_plan `_RecordingMonitor`) decides each resource's step against the previous run as the
engine's step generator does (pkg/resource/deploy/step_generator.go: create, `same` when the provider's Diff
finds nothing, replace on a ForceNew change, else update; the provider's schema in provider_schema.py) and
calls hooks as the steps do (pkg/resource/deploy/step.go: `CreateStep.Apply` after_create, also for the
create half of a replace; `UpdateStep.Apply` before_update before the provider's Update and after_update
after it; `SameStep.Apply` none), each before the registration is answered; deployment.go `RunHooks` waits
with no timeout; source_eval.go `wrapResourceHookCallback` sends `Callbacks.Invoke` with a ResourceHookRequest.
The provider is modelled by creates and updates that write into the loopback fake directory, so post-deploy
proves sign-in against what the program declared. Each test shows which steps ran, which hooks, and whether
the proof ran (the sync user's sign-ins, and the hand-over it writes).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pulumi
import pytest
from conftest import DEPLOYER_APP, DEPLOYER_SECRET, GRAPH_ROLES, GRAPH_SCOPES, PASSWORD, SKYPE_SCOPES, stack_config
from fake_entra import App, Directory, FakeEntra, User

from presencesync.client_secrets import EPOCH
from presencesync.offline_plan import Plan, ResourceApi, TenantFacts, run_program
from presencesync.permissions import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE

UPN = "sync@contoso.com"
HOOK_TIMEOUT = 30.0
GRANT_DELAY = 0.5  # the provider's create of a consent grant takes a while, as Graph does
APP = "azuread:index/application:Application"


def directory_provider(d: Directory):
    """Stands for the azuread provider: each create or update lands in the fake directory."""
    def apply(type_token: str, name: str, state: dict[str, Any], operation: str) -> dict[str, Any]:
        kind = type_token.rsplit(":", 1)[-1]
        with d.lock:
            if kind == "Application" and operation == "create":
                app = d.add_app(App(state["clientId"], set(), owners=set(state["owners"]),
                                    public_client=state["fallbackPublicClientEnabled"]), with_service_principal=False)
                state["objectId"] = app.object_id
            elif kind == "Application":
                app = d.apps[state["clientId"]]
                app.owners, app.public_client = set(state["owners"]), state["fallbackPublicClientEnabled"]
            elif kind == "ServicePrincipal" and operation == "create":
                d.service_principals[state["clientId"]] = {"id": state["objectId"], "appId": state["clientId"],
                                                           "oauth2PermissionScopes": [], "appRoles": []}
            elif kind == "ApplicationPassword":  # every argument is ForceNew: only ever created
                app = next(a for a in d.apps.values() if state["applicationId"].endswith(a.object_id))
                state["value"] = f"secret~{uuid.uuid4()}"
                app.secrets.add(state["value"])
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
    return apply


def delete(d: Directory, plan: Plan) -> None:
    """The engine's deletes after the program: what the previous run had and this one no longer declares."""
    for gone in plan.deleted:
        if gone.retain_on_delete:
            continue
        d.grants.pop(gone.state.get("objectId", ""), None)
        d.role_assignments.pop(gone.state.get("objectId", ""), None)


@pytest.fixture
def tenant(fake: FakeEntra, monkeypatch, tmp_path: Path) -> tuple[FakeEntra, TenantFacts]:
    d = fake.directory
    skype = d.add_resource_api(SKYPE_FOR_BUSINESS_ONLINE, SKYPE_SCOPES)
    graph = d.add_resource_api(MICROSOFT_GRAPH, GRAPH_SCOPES, GRAPH_ROLES)
    user = d.users[UPN] = User(UPN, PASSWORD)
    d.add_app(App(DEPLOYER_APP, {DEPLOYER_SECRET}))  # consent: hook grants with the deployer's credentials
    for key, value in {**fake.env(), "ARM_CLIENT_ID": DEPLOYER_APP, "ARM_CLIENT_SECRET": DEPLOYER_SECRET,
                       "ARM_TENANT_ID": d.tenant_id}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # the hook writes the hand-over file into the working directory
    facts = TenantFacts(
        tenant_id=d.tenant_id, deployer_object_id="0a1b2c3d-0000-4000-8000-00000000de01",
        default_domain="contoso.onmicrosoft.com",
        resource_apis={SKYPE_FOR_BUSINESS_ONLINE: ResourceApi(skype, SKYPE_SCOPES),
                       MICROSOFT_GRAPH: ResourceApi(graph, GRAPH_SCOPES, GRAPH_ROLES)},
        users={UPN: user.id})
    return fake, facts


def up(facts: TenantFacts, fake: FakeEntra, previous: Plan | None = None, *, day: date | None = None,
       **overrides: Any) -> Plan:
    """One `pulumi up` of the stack against the previous run's state; `day` fixes the program's clock."""
    program: Any = None
    if day is not None:
        def program() -> None:
            from presencesync.config import from_pulumi
            from presencesync.handover import post_deploy_step
            from presencesync.tenant import Tenant

            now = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=13)
            tenant = Tenant(pulumi.get_stack(), from_pulumi(now=now), post_deploy_step)
            for name, value in tenant.outputs.items():
                pulumi.export(name, value)
    plan = run_program(stack_config(**overrides), facts, secret_keys=("presencesync:syncUserPassword",),
                       stack="t", hook_timeout=HOOK_TIMEOUT, provider=directory_provider(fake.directory),
                       previous=previous, **({"program": program} if program else {}))
    delete(fake.directory, plan)
    return plan


def sign_ins(fake: FakeEntra) -> int:
    """The sync user's password sign-ins so far: post-deploy's proof signs in once per resource API."""
    return sum(1 for r in fake.directory.token_requests if r.get("grant_type") == "password")


def proofs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("post-deploy: wrote")]


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)  # the mock engine hands pulumi.log to the root logger


@pytest.mark.parametrize("profile", ["ucwa", "graph"])
def test_a_first_up_proves_the_tenant_once_and_hands_over(tenant, tmp_path, caplog, profile):
    fake, facts = tenant
    plan = up(facts, fake, profile=profile, postDeployTimeout="60")
    assert plan.error is None and plan.hook_errors == []
    assert set(plan.operations().values()) == {"create"}
    assert len(plan.hooks_run) == len(plan.operations())  # each create reported itself, once
    assert len(proofs(caplog)) == 1 and sign_ins(fake) == len({"ucwa": 2, "graph": 1}[profile] * "x")
    handed_over = json.loads((tmp_path / "novus-config.t.json").read_text())
    assert handed_over["clientSecret"] in fake.directory.apps[handed_over["clientId"]].secrets
    assert handed_over["tenantId"] == "contoso.onmicrosoft.com"
    assert fake.directory.grants  # it ran once consent existed: after the grants' creates were answered


def test_the_same_stack_again_changes_nothing_and_needs_no_proof(tenant, caplog):
    fake, facts = tenant
    first = up(facts, fake)
    before = sign_ins(fake)
    again = up(facts, fake, first)
    assert again.error is None
    assert set(again.operations().values()) == {"same"}
    assert again.hooks_run == [] and again.deleted == []
    assert len(proofs(caplog)) == 1 and sign_ins(fake) == before  # only the first run's proof


def test_ucwa_to_graph_in_hook_mode_grants_the_app_roles_then_proves_graph(tenant, caplog):
    fake, facts = tenant
    d = fake.directory
    first = up(facts, fake, consent="hook")
    client_id = first.one(APP).state["clientId"]
    assert d.app_roles(client_id) == []
    switched = up(facts, fake, first, consent="hook", profile="graph")
    assert switched.error is None, switched.error
    # Consent in hook mode, then the Graph proof: the app roles are granted and the app's token carries them.
    assert d.app_roles(client_id) == ["Presence.ReadWrite.All", "User.ReadBasic.All"]
    graph_grant = next(g for g in d.grants.values() if g["resourceId"] == d.service_principals[MICROSOFT_GRAPH]["id"])
    assert "Presence.Read.All" in graph_grant["scope"].split()
    assert len(proofs(caplog)) == 2
    assert any(r.get("grant_type") == "client_credentials" and r.get("client_id") == client_id
               for r in d.token_requests)
    # What ran: the application's update (its hooks), nothing else; the client ID and secret stay.
    ops = switched.operations()
    assert ops["application"] == "update" and ops["service-principal"] == "same" and ops["client-secret"] == "same"
    assert switched.hooks_run == ["before_update profile-switch of application",
                                  "after_update tenant-changed of application"]


def test_ucwa_to_graph_in_resource_mode_keeps_the_skype_grant_until_novus_has_moved(tenant, caplog):
    fake, facts = tenant
    d = fake.directory
    first = up(facts, fake, publicClient="true")
    client_id = first.one(APP).state["clientId"]
    skype = d.service_principals[SKYPE_FOR_BUSINESS_ONLINE]["id"]
    switched = up(facts, fake, first, profile="graph", publicClient="true")
    assert switched.error is None, switched.error
    assert {n: o for n, o in switched.operations().items() if o != "same"} == {
        "application": "update", "consent-microsoft-graph": "update",
        "consent-microsoft-graph-presence-readwrite-all": "create", "consent-microsoft-graph-user-readbasic-all": "create"}
    assert [(r.name, r.retain_on_delete) for r in switched.deleted] == [("consent-skype-for-business-online", True)]
    assert [g["scope"] for g in d.grants.values() if g["resourceId"] == skype] == ["Contacts.ReadWrite User.ReadWrite"]
    assert d.app_roles(client_id) == ["Presence.ReadWrite.All", "User.ReadBasic.All"]
    assert len(proofs(caplog)) == 2


def test_a_redirect_uri_added_is_proven(tenant, caplog):
    fake, facts = tenant
    first = up(facts, fake)
    added = up(facts, fake, first, redirectUris=["https://novus.contoso.com/cb"])
    assert added.error is None
    assert {n: o for n, o in added.operations().items() if o != "same"} == {"application": "update"}
    assert added.hooks_run == ["before_update profile-switch of application",
                               "after_update tenant-changed of application"]
    assert len(proofs(caplog)) == 2


def test_an_owner_added_is_proven(tenant, caplog):
    fake, facts = tenant
    first = up(facts, fake)
    owner = "3f3f3f3f-7777-4777-8777-777777777777"
    added = up(facts, fake, first, owners=[owner])
    assert added.error is None
    assert {n: o for n, o in added.operations().items() if o != "same"} == {
        "application": "update", "service-principal": "update"}
    assert owner in fake.directory.apps[first.one(APP).state["clientId"]].owners
    assert len(proofs(caplog)) == 2


def test_a_rotation_day_replaces_one_secret_proves_it_and_says_to_update_novus(tenant, caplog):
    fake, facts = tenant
    period = 90
    # The next period's first day after today: post-deploy's own clock (today) must not find a rotation overdue.
    boundary = EPOCH + timedelta(days=((datetime.now(UTC).date() - EPOCH).days // period + 1) * period)
    first = up(facts, fake, day=boundary - timedelta(days=1), secretRotationDays=str(period))
    same_period = up(facts, fake, first, day=boundary - timedelta(days=1), secretRotationDays=str(period))
    assert set(same_period.operations().values()) == {"same"} and len(proofs(caplog)) == 1
    rotated = up(facts, fake, same_period, day=boundary + timedelta(days=3), secretRotationDays=str(period))
    assert rotated.error is None
    replaced = [n for n, o in rotated.operations().items() if o != "same"]
    assert len(replaced) == 1 and rotated.operations()[replaced[0]] == "replace"
    assert rotated.hooks_run == [f"after_create tenant-changed of {replaced[0]}"]
    assert [r.retain_on_delete for r in rotated.deleted] == [True]  # the old one expires on its own
    assert len(proofs(caplog)) == 2
    notices = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("the client secret changed: enter the new one on the Novus page before" in n for n in notices)


def test_a_failing_post_deploy_fails_the_deployment_naming_the_step(tenant, tmp_path):
    fake, facts = tenant
    fake.directory.users[UPN].sign_in_error = 50076
    plan = up(facts, fake, postDeployTimeout="5")
    assert plan.error is not None and plan.error.startswith("post-deploy failed: ")
    assert "AADSTS50076" in plan.error
    assert not (tmp_path / "novus-config.t.json").exists()


def test_a_profile_switch_under_manual_consent_stops_before_the_application_changes(tenant, caplog):
    fake, facts = tenant
    first = up(facts, fake, consent="manual", postDeploy="false")
    app = fake.directory.apps[first.one(APP).state["clientId"]]
    public_client_before = app.public_client
    switched = up(facts, fake, first, consent="manual", postDeploy="false", profile="graph")
    assert switched.hooks_run == ["before_update profile-switch of application"]
    url = f"/{facts.tenant_id}/adminconsent?client_id={app.client_id}"  # on the (fake's) sign-in host
    assert switched.error is not None and "\n" not in switched.error.strip()
    assert "presencesync:profile: ucwa to graph with presencesync:consent: manual" in switched.error
    assert url in switched.error
    assert app.public_client == public_client_before  # the provider's update never ran
    assert "application" not in {r.name for r in switched.resources}


def test_back_to_ucwa_in_a_tenant_without_skype_stops_before_anything_changes(tenant):
    fake, facts = tenant
    first = up(facts, fake, profile="graph")
    no_skype = TenantFacts(**{**facts.__dict__, "resource_apis": {
        MICROSOFT_GRAPH: facts.resource_apis[MICROSOFT_GRAPH]}})
    writes = len(fake.directory.writes())
    back = up(no_skype, fake, first, profile="ucwa")
    assert back.error == ("presencesync:profile: ucwa needs the Skype for Business Online service principal (app ID "
                          f"{SKYPE_FOR_BUSINESS_ONLINE}), which the tenant does not have: add it with az ad sp create "
                          f"--id {SKYPE_FOR_BUSINESS_ONLINE}, or keep profile graph")
    assert {r.name for r in back.resources if r.type.startswith("azuread:")} == set()  # none registered
    assert back.hooks_run == [] and back.deleted == [] and len(fake.directory.writes()) == writes


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
    assert plan.hooks_run == ["after_create waits-on-itself of application"]
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
