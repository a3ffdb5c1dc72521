"""The preflight against the loopback fake: each tenant shape as Microsoft Graph's documentation describes it
(fake_entra_policies.py names the pages), read with the deployer's own credentials, never a write."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from conftest import (
    DEPLOYER_APP,
    PASSWORD,
    ROOT,
    SECURE,
    TENANT_ID,
    UPN,
    assert_no_secret,
    deployer_env,
    run,
    sequential_round_trips,
    stack_config,
)
from fake_entra import App, FakeEntra, Fault, User, _token_answer
from fake_entra_policies import default_app_management_policy, restriction

from presencesync import preflight
from presencesync.config import load_settings
from presencesync.graph import Deadline, Graph
from presencesync.permissions import MICROSOFT_GRAPH
from presencesync.preflight_rights import PRIVILEGED_ROLE_ADMINISTRATOR, USER_ADMINISTRATOR
from presencesync.secret_lifetime import Duration, longest_end_date, parse_duration

EXISTING_APP = "e0e0e0e0-7777-4777-8777-777777777777"


@pytest.fixture
def tenant(clean_tenant: FakeEntra) -> FakeEntra:
    return clean_tenant


def preflight_cli(fake: FakeEntra, tmp_path: Path, outs: dict[str, Any] | None = None, **config: Any):
    """`python -m presencesync preflight` for a stack of `config` (the stack is new unless `outs` says otherwise)."""
    stack = tmp_path / "Pulumi.t.yaml"
    config = {"watchedUsers": 100, **config}  # said, and more than the clean tenant's users with Teams (issue 19)
    if "syncUsers" in config:  # the collection: each password sealed in syncUserPasswords, no one-user form
        upns = [u["userPrincipalName"] for u in config["syncUsers"]]
        config = {"syncUser": None, "syncUserPassword": None, **config}
        passwords = {"presencesync:syncUserPasswords": {upn: SECURE for upn in upns}}
    else:
        passwords = {"presencesync:syncUserPassword": SECURE}
    stack.write_text(json.dumps({"config": {"azuread:tenantId": fake.directory.tenant_id,
                                            **{k: _yaml_value(v) for k, v in stack_config(**config).items()},
                                            **passwords}}))
    out_file = tmp_path / "outputs.json"
    out_file.write_text(json.dumps(outs or {}))
    writes = len(fake.directory.writes())
    done = run("preflight", "--config", str(stack), "--outputs", str(out_file), "--project-dir", str(tmp_path),
               env=deployer_env(fake))
    assert len(fake.directory.writes()) == writes  # read-only, always: not one write request
    return done


def _yaml_value(text: str) -> Any:
    """A config value as a stack file holds it (numbers and objects typed, the rest as text)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def lines(done, level: str) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith(f"{level}: ")]


def revoke(fake: FakeEntra, permission: str) -> None:
    d = fake.directory
    role = next(r["id"] for r in d.service_principals[MICROSOFT_GRAPH]["appRoles"] if r["value"] == permission)
    d.role_assignments = {k: a for k, a in d.role_assignments.items() if a["appRoleId"] != role}


def test_a_clean_tenant_has_no_findings_in_one_graph_round_trip(tenant, tmp_path):
    for profile in ("ucwa", "graph"):
        tenant.directory.seen.clear()
        done = preflight_cli(tenant, tmp_path, profile=profile)
        assert done.returncode == 0, done.stderr
        assert lines(done, "error") == lines(done, "warning") == []
        assert_no_secret(done, tenant)
        seen = tenant.directory.seen
        graph = [s for s in seen if s.path.startswith("/v1.0/") and not s.batched]
        assert [s.path for s in graph] == ["/v1.0/$batch"]  # every read in one round trip to Graph
        # In all, three sequential requests: msal's discovery, the deployer's token, the $batch.
        assert [s.path.rsplit("/", 1)[-1] for s in seen if not s.batched] == \
            ["openid-configuration", "token", "$batch"]
        assert len([s for s in seen if s.batched]) <= 20  # Graph's limit for one $batch


def test_password_credentials_blocked_for_new_applications(tenant, tmp_path):
    d = tenant.directory
    d.default_app_policy = default_app_management_policy(True, restriction("passwordAddition",
                                                                           after="2025-01-01T00:00:00Z"))
    done = preflight_cli(tenant, tmp_path)
    assert done.returncode == 1
    [stop] = lines(done, "error")
    assert "preflight: app management policy: 'Default app management tenant policy' (00000000-" in stop
    assert "refuses client secrets for applications created after 2025-01-01" in stop
    assert "CredentialTypeNotAllowedAsPerAppPolicy" in stop and "custom app management policy" in stop
    # What the preflight foresees is what addPassword answers on a new application.
    assert add_password(tenant, "2027-01-01T00:00:00Z")[1] == "CredentialTypeNotAllowedAsPerAppPolicy"
    # An application made before the restriction's date keeps its secrets: a rerun of its stack is fine.
    d.add_app(App(str(uuid.uuid4()), set(), object_id=EXISTING_APP, created="2024-06-01T00:00:00Z"))
    assert preflight_cli(tenant, tmp_path, {"applicationObjectId": EXISTING_APP}).returncode == 0
    # A custom policy assigned to the application applies instead of the tenant's default.
    d.default_app_policy = default_app_management_policy(True, restriction("passwordAddition"))
    d.app_policies["exempt"] = {"id": "exempt", "displayName": "PresenceSync may hold secrets", "isEnabled": True,
                                "restrictions": {"passwordCredentials": []}}
    d.policy_assignments[EXISTING_APP] = "exempt"
    assert preflight_cli(tenant, tmp_path, {"applicationObjectId": EXISTING_APP}).returncode == 0
    # A disabled policy, or restriction, refuses nothing.
    del d.apps[next(k for k, a in d.apps.items() if a.object_id == EXISTING_APP)]
    d.default_app_policy = default_app_management_policy(False, restriction("passwordAddition"))
    assert preflight_cli(tenant, tmp_path).returncode == 0
    d.default_app_policy = default_app_management_policy(True, restriction("passwordAddition", state="disabled"))
    assert preflight_cli(tenant, tmp_path).returncode == 0


def test_secrets_limited_to_180_days(tenant, tmp_path):
    d = tenant.directory
    d.default_app_policy = default_app_management_policy(True, restriction("passwordLifetime", "P180D"))
    two_years = preflight_cli(tenant, tmp_path, secretExpiry="2y")
    assert two_years.returncode == 1
    [stop] = lines(two_years, "error")
    today = datetime.now(UTC).date()
    assert "limits client secrets to P180D, shorter than the stack asks with secretExpiry 2y" in stop
    latest = (datetime.combine(today, datetime.min.time(), UTC) + timedelta(days=180)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"secretExpiry a date on or before {latest}, or secretRotationDays of at most 90" in stop
    fits = preflight_cli(tenant, tmp_path, secretRotationDays="60")
    assert fits.returncode == 0 and lines(fits, "error") == [], fits.stderr
    assert preflight_cli(tenant, tmp_path, secretExpiry=latest).returncode == 0  # what it named fits
    # The fake's addPassword agrees: the 2y secret is refused, the named date and a 60-day rotation's are not.
    now = datetime.now(UTC)
    assert add_password(tenant, (now + timedelta(days=730)).strftime("%Y-%m-%dT%H:%M:%SZ"))[1] == \
        "CredentialInvalidLifetimeAsPerAppPolicy"
    assert add_password(tenant, latest)[0] == 200
    settings = load_settings(stack_config(secretRotationDays="60"), now=now)
    for secret in settings.client_secrets.secrets:
        assert add_password(tenant, secret.end_date, secret.start_date)[0] == 200


def test_security_defaults_on(tenant, tmp_path):
    tenant.directory.security_defaults = True
    done = preflight_cli(tenant, tmp_path)
    assert done.returncode == 1
    [stop] = lines(done, "error")
    assert stop.startswith("error: preflight: security defaults: security defaults are on, so sync@contoso.com's")
    assert "MFA (AADSTS50076)" in stop
    # A sync user still to be created: a warning (it may be excluded before Novus needs it).
    del tenant.directory.users[UPN]
    later = preflight_cli(tenant, tmp_path, syncUser={"userPrincipalName": UPN, "create": True,
                                                     "licensedElsewhere": True})
    assert later.returncode == 0 and lines(later, "error") == []
    assert "does not exist yet" in lines(later, "warning")[0]


def mfa_for_all_users(exclude: list[str] | None = None) -> dict[str, Any]:
    """As List policies (conditionalaccessroot-list-policies.md) returns one."""
    return {"id": "0c9d2b4a-8d30-413f-88b8-144c6c8d98d9", "displayName": "Require MFA for all users",
            "createdDateTime": "2025-01-01T00:00:00Z", "modifiedDateTime": None, "state": "enabled",
            "sessionControls": None,
            "conditions": {"signInRiskLevels": [], "clientAppTypes": ["all"], "platforms": None, "locations": None,
                           "applications": {"includeApplications": ["All"], "excludeApplications": [],
                                            "includeUserActions": []},
                           "users": {"includeUsers": ["All"], "excludeUsers": exclude or [], "includeGroups": [],
                                     "excludeGroups": [], "includeRoles": [], "excludeRoles": []}},
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"], "customAuthenticationFactors": [],
                              "termsOfUse": []}}


def test_conditional_access_requiring_mfa_for_all_users(tenant, tmp_path):
    d = tenant.directory
    d.ca_policies = [mfa_for_all_users()]
    done = preflight_cli(tenant, tmp_path)
    assert done.returncode == 1
    [stop] = lines(done, "error")
    assert "conditional access: policy 'Require MFA for all users' (0c9d2b4a-8d30-413f-88b8-144c6c8d98d9) " \
           "requires MFA" in stop and "excludes the sync user" in stop
    d.ca_policies = [mfa_for_all_users(exclude=[d.users[UPN].id])]
    assert preflight_cli(tenant, tmp_path).returncode == 0
    # Excluded through a group it is in, or in report-only mode, or only for legacy clients: not in the way.
    d.users[UPN].groups = ["9a9a9a9a-0000-4000-8000-000000000001"]
    excluded_group = mfa_for_all_users()
    excluded_group["conditions"]["users"]["excludeGroups"] = d.users[UPN].groups
    report_only = {**mfa_for_all_users(), "state": "enabledForReportingButNotEnforced"}
    legacy = mfa_for_all_users()
    legacy["conditions"]["clientAppTypes"] = ["exchangeActiveSync", "other"]
    legacy["grantControls"]["builtInControls"] = ["block"]
    d.ca_policies = [excluded_group, report_only, legacy]
    assert preflight_cli(tenant, tmp_path).returncode == 0


def test_deployer_missing_app_role_assignment_permission(tenant, tmp_path):
    revoke(tenant, "AppRoleAssignment.ReadWrite.All")
    done = preflight_cli(tenant, tmp_path, profile="graph", consent="resource")
    assert done.returncode == 1
    [stop] = lines(done, "error")
    sp = tenant.directory.service_principals[DEPLOYER_APP]["id"]
    assert stop.startswith(f"error: preflight: deployer: the deployer (service principal {sp}) lacks the Graph "
                           "application permissions pulumi up needs for this stack: AppRoleAssignment.ReadWrite.All "
                           "to grant the app's Graph application permissions;")
    assert "consent: manual" in stop
    manual = preflight_cli(tenant, tmp_path, profile="graph", consent="manual")  # a human admin consents
    assert manual.returncode == 0 and lines(manual, "error") == []
    assert preflight_cli(tenant, tmp_path, profile="ucwa").returncode == 0  # ucwa assigns no app roles


def test_a_deployer_that_may_not_read_conditional_access_goes_on(tenant, tmp_path):
    d = tenant.directory
    revoke(tenant, "Policy.Read.All")
    for narrower in ("Policy.Read.ApplicationConfiguration", "Policy.ReadWrite.SecurityDefaults"):
        d.service_principals[MICROSOFT_GRAPH]["appRoles"].append({"value": narrower, "id": str(uuid.uuid4())})
        d.add_role_assignment(DEPLOYER_APP, MICROSOFT_GRAPH, narrower)
    d.security_defaults = True  # still found: the other reads go on
    done = preflight_cli(tenant, tmp_path)
    [warning] = lines(done, "warning")
    assert warning.startswith("warning: preflight: not read: the deployer may not read Conditional Access policies "
                              "(Graph answered 403 Authorization_RequestDenied); grant it Policy.Read.All, or check "
                              "by hand: Entra admin center > Protection > Conditional Access")
    assert [line.split(":")[2].strip() for line in lines(done, "error")] == ["security defaults"]


def test_conditional_access_is_read_once_and_throttling_is_one_line(tenant, tmp_path):
    """Graph allows one read of the policies per second per tenant, all apps together, and its 429 says
    no Retry-After: the preflight reads them once and says so, never resends."""
    d = tenant.directory
    d.faults.append(Fault("GET", r"/conditionalAccess/policies$", 429, times=5))
    again = preflight_cli(tenant, tmp_path)
    assert again.returncode == 0
    assert len([s for s in d.seen if s.path.endswith("/conditionalAccess/policies")]) == 1
    [warning] = lines(again, "warning")
    assert "Conditional Access policies could not be read now (Graph throttles it; answered 429)" in warning


def test_what_the_profile_needs(tenant, tmp_path):
    d = tenant.directory
    skype = "00000004-0000-0ff1-ce00-000000000000"
    d.hidden_until[skype] = float("inf")
    d.users[UPN].enabled = False
    d.users[UPN].licensed = False
    d.add_app(App(str(uuid.uuid4()), set(), display_name="PresenceSync"))
    done = preflight_cli(tenant, tmp_path)
    topics = [line.split(": ")[2] for line in lines(done, "error")]
    assert done.returncode == 1 and sorted(topics) == ["display name", "sync user", "sync user", "ucwa"]
    assert "az ad sp create --id 00000004-0000-0ff1-ce00-000000000000" in done.stderr
    assert "is disabled" in done.stderr and "no Teams or Skype for Business licence" in done.stderr
    # Its own application under that name is no clash; a sync user it creates needs no licence yet.
    del d.hidden_until[skype]
    own = next(a for a in d.apps.values() if a.display_name == "PresenceSync")
    del d.users[UPN]
    ok = preflight_cli(tenant, tmp_path, {"applicationObjectId": own.object_id},
                       syncUser={"userPrincipalName": UPN, "create": True, "licensedElsewhere": True})
    assert ok.returncode == 0, ok.stderr
    missing = preflight_cli(tenant, tmp_path, {"applicationObjectId": own.object_id})
    assert "error: preflight: sync user: sync@contoso.com does not exist in this tenant" in missing.stderr


def test_a_signed_in_admin_is_checked_by_its_directory_roles(tenant, monkeypatch):
    """A delegated token (it carries `scp`): the roles come from /me/transitiveMemberOf."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tenant.ca_path))
    d = tenant.directory
    admin = User("admin@contoso.com", "x", roles=[USER_ADMINISTRATOR])
    d.users[admin.upn] = admin
    token = _token_answer(d, f"user:{admin.upn}", oid=admin.id, scope=f"{tenant.url}/User.Read")["access_token"]
    deployer = preflight.deployer_of(token)
    assert not deployer.app_only
    graph = Graph(tenant.url, lambda: token, Deadline(30))
    settings = load_settings(stack_config(profile="graph"), now=datetime.now(UTC))
    findings, _ = preflight.preflight(settings, graph, deployer, preflight.OwnApplication(True), datetime.now(UTC))
    [stop] = [f.line() for f in findings if f.stop]
    assert "lacks the Entra roles" in stop and "Global Administrator or Privileged Role Administrator to consent" \
        in stop
    admin.roles = [PRIVILEGED_ROLE_ADMINISTRATOR]
    findings, _ = preflight.preflight(settings, graph, deployer, preflight.OwnApplication(True), datetime.now(UTC))
    assert [f for f in findings if f.stop] == []


@pytest.mark.parametrize(("text", "days"), [("P180D", 180), ("P4DT12H30M5S", 4), ("PT36H", 1), ("P2W", 14),
                                            ("P1Y6M", 546), ("p90d", 90)])
def test_iso_8601_durations_on_the_calendar(text, days):
    start = datetime(2026, 1, 31, tzinfo=UTC)
    limit = parse_duration(text)
    assert limit is not None and limit.whole_days(start) == days


def test_durations_that_are_not_iso_8601_and_month_ends():
    assert [parse_duration(t) for t in ("180", "P", "PT", "P1.5D", "180D", "P1D2H")] == [None] * 6
    assert Duration("P1M", 1, 0, 0).after(datetime(2026, 1, 31, tzinfo=UTC)) == datetime(2026, 2, 28, tzinfo=UTC)
    assert longest_end_date(Duration("P1Y", 12, 0, 0), datetime(2028, 2, 29, 13, 5, tzinfo=UTC)) == \
        "2029-02-28T00:00:00Z"


def add_password(fake: FakeEntra, end: str, start: str | None = None) -> tuple[int, str]:
    """What the provider's create does: a new application, then addPassword, as the deployer (az's paths)."""
    d = fake.directory
    token = _token_answer(d, f"app:{DEPLOYER_APP}", oid=d.service_principals[DEPLOYER_APP]["id"])["access_token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    session.trust_env = False  # or REQUESTS_CA_BUNDLE would override verify
    session.verify = str(fake.ca_path)
    app = session.post(f"{fake.url}/v1.0/applications", json={"displayName": "PresenceSync"}, timeout=30).json()
    credential = {"displayName": "presencesync (Novus)", "endDateTime": end, **({"startDateTime": start} if start else {})}
    answer = session.post(f"{fake.url}/v1.0/applications/{app['id']}/addPassword",
                          json={"passwordCredential": credential}, timeout=30)
    return answer.status_code, (answer.json().get("error") or {}).get("code", "")


def test_both_pipelines_run_the_preflight_before_pulumi_up():
    """Each deploy job either deploys through fleet up, which runs every stack's preflight before its up
    (test_fleet.py), or runs a preflight step before pulumi/actions' up, once the stack's tenant is known."""
    job = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())["jobs"]["up"]
    steps = [s.get("run") or s.get("uses", "") for s in job["steps"]]
    ups = [i for i, s in enumerate(steps) if s.startswith("pulumi/actions") or "presencesync fleet up" in s]
    assert ups
    for up in ups:
        if steps[up].startswith("pulumi/actions"):
            first = next(i for i, s in enumerate(steps) if "presencesync preflight --stack" in s)
            assert "pipeline.py env" in steps[first - 1] and first < up
    azure = (ROOT / "azure-pipelines.yml").read_text()
    fleet_steps = (ROOT / ".azure-pipelines/fleet-steps.yml").read_text()
    assert "action: up" in azure and 'presencesync fleet "$ACTION" --stacks' in fleet_steps


def test_usage_and_missing_credentials_are_one_line(tenant, tmp_path):
    assert run("preflight").returncode == 64  # a usage error, never 2 (drift to the pipelines)
    stack = tmp_path / "Pulumi.t.yaml"
    stack.write_text(json.dumps({"config": {"azuread:tenantId": TENANT_ID, "presencesync:syncUser": {"userPrincipalName": UPN},
                                            "presencesync:syncUserPassword": SECURE}}))
    done = run("preflight", "--config", str(stack), "--outputs", str(tmp_path / "none.json"), env=tenant.env())
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 2  # the outputs note, then the error
    assert done.stderr.splitlines()[-1].startswith("error: no credentials for Microsoft Graph")
    assert tenant.directory.seen == []  # nothing asked of the tenant


def test_without_the_stack_outputs_an_application_of_its_name_may_be_its_own(tenant, tmp_path):
    """No outputs (no pulumi CLI yet): the same-named application is a warning, and its own policy and
    creation date decide its secrets, read in a second round trip."""
    d = tenant.directory
    d.default_app_policy = default_app_management_policy(True, restriction("passwordAddition",
                                                                           after="2025-01-01T00:00:00Z"))
    d.add_app(App(str(uuid.uuid4()), set(), object_id=EXISTING_APP, created="2024-06-01T00:00:00Z"))
    stack = tmp_path / "Pulumi.t.yaml"
    stack.write_text(json.dumps({"config": {"azuread:tenantId": TENANT_ID, "presencesync:syncUser": {"userPrincipalName": UPN},
                                            "presencesync:syncUserPassword": SECURE, "presencesync:watchedUsers": 100}}))
    done = run("preflight", "--config", str(stack), "--outputs", str(tmp_path / "missing.json"),
               env=deployer_env(tenant))
    assert done.returncode == 0, done.stderr
    [warning] = lines(done, "warning")
    assert "display name: an application (client ID" in warning and "whether it is this stack's own" in warning
    assert "2 Graph round trip(s)" in done.stderr
    assert [s.path for s in d.seen if s.path.endswith("/appManagementPolicies")] == \
        [f"/v1.0/applications/{EXISTING_APP}/appManagementPolicies"]


def test_it_signs_in_to_the_stacks_own_tenant(tenant, tmp_path):
    """As post-deploy: the stack's azuread:tenantId decides, an ARM_TENANT_ID naming another is set aside."""
    stack = tmp_path / "Pulumi.t.yaml"
    stack.write_text(json.dumps({"config": {"azuread:tenantId": TENANT_ID, "presencesync:syncUserPassword": SECURE,
                                            "presencesync:syncUser": {"userPrincipalName": UPN}}}))
    other = "22222222-2222-4222-8222-222222222222"
    done = run("preflight", "--config", str(stack), "--outputs", str(tmp_path / "none.json"),
               env={**deployer_env(tenant), "ARM_TENANT_ID": other})
    assert done.returncode == 0, done.stderr
    assert f"ARM_TENANT_ID {other} set aside" in done.stderr
    tokens = [s.path for s in tenant.directory.seen if s.path.endswith("/token")]
    assert tokens == [f"/{TENANT_ID}/oauth2/v2.0/token"]


def test_the_tenants_users_with_teams_are_counted_and_watched_users_weighed(tenant, tmp_path):
    """Issue 19: the preflight counts the enabled users with Teams in its one $batch (an advanced query, with
    ConsistencyLevel: eventual) and warns when watchedUsers is not said, or is smaller."""
    from fake_entra import User

    d = tenant.directory
    for i in range(300):
        d.users[f"person{i}@contoso.com"] = User(f"person{i}@contoso.com", "x", enabled=i % 3 != 0)
    counted = sum(1 for u in d.users.values() if u.enabled and u.licensed)
    absent = preflight_cli(tenant, tmp_path, watchedUsers=None)
    assert absent.returncode == 0, absent.stderr
    assert lines(absent, "warning") == [
        f"warning: preflight: watchedUsers: not set, and the tenant has {counted} enabled users with Teams, who need "
        "1 sync users with profile ucwa (the stack has 1); set watchedUsers to how many people Novus follows"]
    smaller = preflight_cli(tenant, tmp_path, watchedUsers=150)
    assert lines(smaller, "warning")[0].startswith(f"warning: preflight: watchedUsers: 150, and the tenant has {counted}")
    assert lines(preflight_cli(tenant, tmp_path, watchedUsers=counted), "warning") == []
    assert "1 Graph round trip(s)" in smaller.stderr


COLLECTION = ["excluded@contoso.com", "disabled@contoso.com", "unlicensed@contoso.com", "new@contoso.com"]
LATENCY = 0.3  # a round trip; long beside the scheduling jitter of a loaded machine


def named(done) -> list[tuple[str, str, str]]:
    """Each error and warning line as (level, topic, the one sync user of COLLECTION it names)."""
    found = []
    for line in lines(done, "error") + lines(done, "warning"):
        [upn] = [u for u in COLLECTION if u in line]  # one user, named by its user principal name
        found.append((line.split(":")[0], line.split(": ")[2], upn))
    return sorted(found)


def test_every_sync_user_of_the_collection_is_checked_each_finding_naming_it(tenant, tmp_path):
    """Issue 19 made the sync users a collection: the preflight's sign-in rules and what the profile needs hold
    for each of them, not only the first."""
    d = tenant.directory
    for upn in COLLECTION[:3]:
        d.users[upn] = User(upn, PASSWORD)
    d.users["disabled@contoso.com"].enabled = False
    d.users["unlicensed@contoso.com"].licensed = False
    d.ca_policies = [mfa_for_all_users(exclude=[d.users["excluded@contoso.com"].id])]
    users = [{"userPrincipalName": upn} for upn in COLLECTION[:3]] + [
        {"userPrincipalName": "new@contoso.com", "create": True, "licensedElsewhere": True}]
    done = preflight_cli(tenant, tmp_path, syncUsers=users)
    assert done.returncode == 1
    assert named(done) == [
        ("error", "conditional access", "disabled@contoso.com"),
        ("error", "conditional access", "unlicensed@contoso.com"),
        ("error", "sync user", "disabled@contoso.com"),
        ("error", "sync user", "unlicensed@contoso.com"),
        ("warning", "conditional access", "new@contoso.com")], done.stderr  # not there yet: a warning
    assert "policy 'Require MFA for all users' (0c9d2b4a-8d30-413f-88b8-144c6c8d98d9) requires MFA for " \
           "disabled@contoso.com's sign-in" in done.stderr
    assert "disabled@contoso.com is disabled" in done.stderr and \
        "unlicensed@contoso.com has no Teams or Skype for Business licence" in done.stderr
    assert "new@contoso.com does not exist yet" in done.stderr
    # Not to be created, the missing user is an error of its own.
    users[3] = {"userPrincipalName": "new@contoso.com"}
    missing = preflight_cli(tenant, tmp_path, syncUsers=users)
    assert ("error", "sync user", "new@contoso.com") in named(missing)
    assert "new@contoso.com does not exist in this tenant" in missing.stderr
    # Security defaults stop each sync user that exists, and warn for the one still to be created.
    d.ca_policies = []
    d.users["disabled@contoso.com"].enabled = d.users["unlicensed@contoso.com"].licensed = True
    d.security_defaults = True
    users[3] = {"userPrincipalName": "new@contoso.com", "create": True, "licensedElsewhere": True}
    defaults = preflight_cli(tenant, tmp_path, syncUsers=users)
    assert named(defaults) == [("error", "security defaults", upn) for upn in sorted(COLLECTION[:3])] + [
        ("warning", "security defaults", "new@contoso.com")], defaults.stderr


def _clean_run(tenant: FakeEntra, tmp_path: Path, upns: list[str]) -> tuple[Any, list[Any], int]:
    """The preflight of a clean tenant with these sync users: its answer, the fake's requests, the round trips."""
    d = tenant.directory
    for upn in upns:
        d.users[upn] = User(upn, PASSWORD)
    d.seen.clear()
    d.latency = LATENCY
    try:
        done = preflight_cli(tenant, tmp_path, syncUsers=[{"userPrincipalName": upn} for upn in upns])
    finally:
        d.latency = 0.0
    return done, list(d.seen), sequential_round_trips([s.at for s in d.seen if not s.batched], LATENCY)


def test_a_clean_tenant_with_four_sync_users_takes_the_round_trips_of_one(tenant, tmp_path):
    """Every sync user is read (two reads each) in the preflight's $batch; past Graph's 20 requests a $batch the
    envelopes go out side by side, so the sequential round trips do not grow with the collection."""
    rounds = {}
    for count in (1, 4, 12):
        upns = [f"sync{i}@contoso.com" for i in range(count)]
        done, seen, rounds[count] = _clean_run(tenant, tmp_path, upns)
        assert done.returncode == 0, done.stderr
        assert lines(done, "error") == lines(done, "warning") == [], done.stderr
        read = {s.path for s in seen if s.batched}
        for upn in upns:  # each sync user itself, and its groups (for Conditional Access)
            assert {f"/v1.0/users/{upn}", f"/v1.0/users/{upn}/transitiveMemberOf"} <= read, (upn, sorted(read))
        envelopes = [s for s in seen if s.path == "/v1.0/$batch"]
        assert len(envelopes) == (2 if count == 12 else 1)  # 12 users: 34 reads, past one $batch's 20
    # msal's discovery, the deployer's token, the $batch(es): three, whatever the number of sync users.
    assert rounds == {1: 3, 4: 3, 12: 3}, rounds


def test_the_deployer_needs_to_create_a_sync_user_the_collection_creates_past_its_first(tenant, tmp_path):
    """The rights follow every sync user: the first exists, the second is to be created."""
    revoke(tenant, "User.ReadWrite.All")
    tenant.directory.users["sync0@contoso.com"] = User("sync0@contoso.com", PASSWORD)
    done = preflight_cli(tenant, tmp_path, syncUsers=[
        {"userPrincipalName": "sync0@contoso.com"},
        {"userPrincipalName": "sync1@contoso.com", "create": True, "licensedElsewhere": True}])
    assert done.returncode == 1
    [stop] = lines(done, "error")
    assert "preflight: deployer:" in stop and "User.ReadWrite.All to create the sync users;" in stop
