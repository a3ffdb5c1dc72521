"""Post-deploy against the loopback HTTPS fake of Entra sign-in and Graph, with the real msal and requests."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    DEPLOYER_APP,
    PASSWORD,
    ROOT,
    SECURE,
    UPN,
    assert_no_secret,
    consent,
    outputs,
    post_deploy,
    run,
    write_stack,
)
from fake_entra import App, FakeEntra, Fault, User

from presencesync.permissions import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE


@pytest.fixture
def tenant(tenant: FakeEntra) -> FakeEntra:
    """conftest's tenant, with the sync user and the new app it owns."""
    d = tenant.directory
    user = User(UPN, PASSWORD)
    d.users[UPN] = user
    d.add_app(App(CLIENT_ID, {CLIENT_SECRET}, owners={user.id}))
    return tenant


def test_resource_mode_verifies_and_hands_over_an_owner_only_file(tenant, tmp_path):
    consent(tenant)
    done = post_deploy(tenant, tmp_path, deployer=False)
    assert done.returncode == 0, done.stderr
    handover = tmp_path / "novus-config.t.json"
    assert stat.S_IMODE(handover.stat().st_mode) == 0o600
    assert json.loads(handover.read_text()) == {"tenantId": "contoso.com", "clientId": CLIENT_ID,
                                                "clientSecret": CLIENT_SECRET, "userName": UPN, "password": PASSWORD}
    assert done.stdout.splitlines() == ["Tenant ID      contoso.com", f"Client ID      {CLIENT_ID}",
                                        "Client secret  ********", f"User name      {UPN}", "Password       ********"]
    assert_no_secret(done, tenant)
    assert tenant.directory.writes() == []
    # the sign-in went through the confidential client (client secret sent) for both APIs
    scopes = [r["scope"] for r in tenant.directory.token_requests if r.get("grant_type") == "password"]
    assert any(SKYPE_FOR_BUSINESS_ONLINE in s for s in scopes) and any("User.Read" in s for s in scopes)


def test_show_secrets_prints_them(tenant, tmp_path):
    consent(tenant)
    done = post_deploy(tenant, tmp_path, "--show-secrets", deployer=False)
    assert done.returncode == 0 and f"Client secret  {CLIENT_SECRET}" in done.stdout


def test_existing_handover_file_is_made_owner_only(tenant, tmp_path):
    consent(tenant)
    target = tmp_path / "novus-config.t.json"
    target.write_text("old")
    os.chmod(target, 0o644)
    assert post_deploy(tenant, tmp_path, deployer=False).returncode == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_hook_mode_grants_consent_then_a_rerun_writes_nothing(tenant, tmp_path):
    done = post_deploy(tenant, tmp_path, consent_mode="hook")
    assert done.returncode == 0, done.stderr
    grants = sorted(g["scope"] for g in tenant.directory.grants.values())
    assert grants == ["Contacts.ReadWrite User.ReadWrite", "User.Read"]
    assert all(g["consentType"] == "AllPrincipals" for g in tenant.directory.grants.values())
    writes_before = len(tenant.directory.writes())
    assert writes_before == 2
    again = post_deploy(tenant, tmp_path, consent_mode="hook")
    assert again.returncode == 0, again.stderr
    assert len(tenant.directory.writes()) == writes_before
    assert len(tenant.directory.grants) == 2
    assert_no_secret(again, tenant)


def test_hook_mode_adds_missing_scopes_and_keeps_others(tenant, tmp_path):
    grant = tenant.directory.add_grant(CLIENT_ID, SKYPE_FOR_BUSINESS_ONLINE, "Meetings.ReadWrite User.ReadWrite")
    tenant.directory.add_grant(CLIENT_ID, MICROSOFT_GRAPH, "User.Read")
    done = post_deploy(tenant, tmp_path, consent_mode="hook")
    assert done.returncode == 0, done.stderr
    assert tenant.directory.grants[grant["id"]]["scope"] == "Meetings.ReadWrite User.ReadWrite Contacts.ReadWrite"
    assert [(w.method, w.path.split("/")[2]) for w in tenant.directory.writes()] == [("PATCH", "oauth2PermissionGrants")]
    assert len(tenant.directory.grants) == 2


def test_manual_mode_waits_for_consent_without_deployer_credentials(tenant, tmp_path):
    timer = threading.Timer(2.0, consent, args=(tenant,))
    timer.start()
    done = post_deploy(tenant, tmp_path, consent_mode="manual", deployer=False)
    timer.join()
    assert done.returncode == 0, done.stderr
    assert "grant admin consent at https://" in done.stderr
    assert not any(r.get("client_id") == DEPLOYER_APP for r in tenant.directory.token_requests)


def test_hook_mode_without_credentials_is_a_clear_error(tenant, tmp_path):
    done = post_deploy(tenant, tmp_path, consent_mode="hook", deployer=False)
    assert done.returncode == 1
    assert done.stderr.startswith("error: no credentials for Microsoft Graph") and "Traceback" not in done.stderr


def test_throttling_server_errors_and_dropped_connections_are_survived(tenant, tmp_path):
    d = tenant.directory
    d.faults += [Fault("POST", r"/\$batch", 429, headers={"Retry-After": "1"}),
                 Fault("POST", r"/oauth2/v2.0/token", 503),
                 Fault("POST", r"/\$batch", 0)]  # status 0: the connection is dropped unanswered
    done = post_deploy(tenant, tmp_path, consent_mode="hook")
    assert done.returncode == 0, done.stderr
    assert len(d.grants) == 2
    assert all(f.times == 0 for f in d.faults)


def test_a_throttled_batch_item_is_resent_alone(tenant, tmp_path):
    d = tenant.directory
    d.faults.append(Fault("GET", r"/oauth2PermissionGrants", 429, headers={"Retry-After": "1"}))
    done = post_deploy(tenant, tmp_path, consent_mode="hook")
    assert done.returncode == 0, done.stderr
    assert [s.path for s in d.seen if s.batched and "PermissionGrants" in s.path][:2] == \
        ["/v1.0/oauth2PermissionGrants", "/v1.0/oauth2PermissionGrants"]


def test_replication_delay_is_survived_without_fixed_sleeps(tenant, tmp_path):
    d = tenant.directory
    d.hidden_until[CLIENT_ID] = time.monotonic() + 3  # the new app is not visible for 3 s
    not_yet = {"error": {"code": "Request_BadRequest", "message": "Resource 'x' does not exist or one of its "
                         "queried reference-property objects are not present."}}
    d.faults += [Fault("GET", r"/servicePrincipals", 404, times=2, body=not_yet),
                 Fault("POST", r"/oauth2PermissionGrants", 400, times=1, body=not_yet)]
    started = time.monotonic()
    done = post_deploy(tenant, tmp_path, consent_mode="hook")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 20
    visible = d.hidden_until[CLIENT_ID]
    refused = [s for s in d.seen if "token" in s.path and s.at < visible]
    assert len(refused) >= 2  # retried with backoff until the app appeared
    # ... and the wait ended within a second of the directory's consistency (the backoff's cap).
    assert min(s.at for s in d.seen if "token" in s.path and s.at >= visible) - visible < 1.3
    assert all(f.times == 0 for f in d.faults) and len(d.grants) == 2


@pytest.mark.parametrize(("code", "advice"), [
    (50076, "exclude it from MFA"), (50079, "must register for MFA"), (53003, "Conditional Access blocks"),
    (7000218, "set presencesync:publicClient to true"), (50053, "locked out"), (50055, "password has expired"),
    (50057, "is disabled"),
])
def test_each_sign_in_error_is_mapped_to_its_fix(tenant, tmp_path, code, advice):
    consent(tenant)
    tenant.directory.users[UPN].sign_in_error = code
    done = post_deploy(tenant, tmp_path, "--check", deployer=False)
    assert done.returncode == 2
    assert f"drift: sign-in for Skype for Business Online: AADSTS{code}: " in done.stderr and advice in done.stderr
    assert_no_secret(done, tenant)


def test_wrong_password_missing_user_and_missing_consent(tenant, tmp_path):
    consent(tenant)
    bad = outputs(tenant)
    bad["novus"]["password"] = "wrong"
    assert "AADSTS50126: wrong user name or password" in post_deploy(tenant, tmp_path, "--check", outs=bad).stderr
    bad["novus"]["userName"] = "nobody@contoso.com"
    assert "AADSTS50034: the sync user does not exist" in post_deploy(tenant, tmp_path, "--check", outs=bad).stderr
    tenant.directory.grants.clear()
    done = post_deploy(tenant, tmp_path, "--check", deployer=False)
    assert done.returncode == 2 and "AADSTS65001: admin consent is missing" in done.stderr


def test_wrong_secret_and_unknown_app_fail_after_the_deadline(tenant, tmp_path):
    consent(tenant)
    bad = outputs(tenant)
    bad["novus"]["clientSecret"] = "stale"
    done = post_deploy(tenant, tmp_path, outs=bad, timeout=2, deployer=False)
    assert done.returncode == 1
    assert "AADSTS7000215: the client secret is wrong or expired" in done.stderr


def test_check_is_read_only_and_exits_zero_when_all_holds(tenant, tmp_path):
    consent(tenant)
    done = post_deploy(tenant, tmp_path, "--check", consent_mode="hook")
    assert done.returncode == 0, done.stderr
    assert tenant.directory.writes() == [] and not (tmp_path / "novus-config.t.json").exists()


def test_check_reports_each_drift(tenant, tmp_path):
    tenant.directory.add_grant(CLIENT_ID, SKYPE_FOR_BUSINESS_ONLINE, "User.ReadWrite")
    tenant.directory.add_grant(CLIENT_ID, MICROSOFT_GRAPH, "User.Read")
    user = tenant.directory.users[UPN]
    user.licensed = False
    tenant.directory.apps[CLIENT_ID].owners.clear()
    soon = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    done = post_deploy(tenant, tmp_path, "--check", consent_mode="hook", outs=outputs(tenant, soon))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert "drift: consent: Skype for Business Online lacks Contacts.ReadWrite" in lines
    assert any(line.startswith("drift: sign-in for Skype for Business Online: AADSTS65001") for line in lines)
    assert any(line.startswith("drift: licence: the sync user has no licence") for line in lines)
    assert any(line.startswith("drift: ownership: the sync user no longer owns the application") for line in lines)
    assert any(line.startswith(f"drift: client secret: the one Novus should hold expires {soon}, within 30 days")
               for line in lines)
    assert tenant.directory.writes() == []


def test_bad_outputs_exit_one(tenant, tmp_path):
    broken = outputs(tenant)
    del broken["novus"]["clientSecret"]
    done = post_deploy(tenant, tmp_path, "--check", outs=broken)
    assert done.returncode == 1
    assert "the stack outputs lack novus.clientSecret" in done.stderr


def test_handover_file_name_is_ignored_by_git():
    assert "novus-config.*.json" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_post_deploy_step_runs_post_deploy_and_writes_the_handover(tenant, tmp_path, monkeypatch):
    """The step takes the stack outputs, resolved. test_engine_hooks runs it under the engine's order from
    a real program; this covers its failure path directly."""
    import asyncio

    import pulumi

    from presencesync.config import load_settings
    from presencesync.handover import post_deploy_step

    consent(tenant)
    for key, value in tenant.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"azuread:tenantId": tenant.directory.tenant_id, "presencesync:syncUserPassword": PASSWORD,
                              "presencesync:syncUser": json.dumps({"userPrincipalName": UPN})}, now=datetime.now(UTC))
    def run_hook() -> None:
        asyncio.run(post_deploy_step(settings)(outputs(tenant)))

    run_hook()
    written = tmp_path / f"novus-config.{pulumi.get_stack()}.json"
    assert json.loads(written.read_text())["clientSecret"] == CLIENT_SECRET
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    tenant.directory.users[UPN].sign_in_error = 50076
    with pytest.raises(pulumi.RunError, match="AADSTS50076"):
        run_hook()


@pytest.mark.parametrize("where", ["missing/dir/novus.json", "."])
def test_output_into_a_missing_directory_or_onto_a_directory_fails_before_any_sign_in(tenant, tmp_path, where):
    consent(tenant)
    target = tmp_path / where
    done = post_deploy(tenant, tmp_path, "--output", str(target))
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: --output {target}: ") and len(done.stderr.splitlines()) == 1
    assert tenant.directory.token_requests == [] and tenant.directory.seen == []


def test_an_unreachable_sign_in_endpoint_is_one_line(tenant, tmp_path):
    stack = write_stack(tmp_path, {"presencesync:syncUser": {"userPrincipalName": UPN},
                                   "presencesync:syncUserPassword": SECURE})
    (tmp_path / "outputs.json").write_text(json.dumps(outputs(tenant)))
    closed = f"https://{tenant.address}:1"  # nothing listens there
    done = run("post-deploy", "--config", str(stack), "--outputs", str(tmp_path / "outputs.json"), "--project-dir",
               str(tmp_path), "--check", env={**tenant.env(), "PRESENCESYNC_AUTHORITY_HOST": closed})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: sign-in: cannot read the sign-in endpoint {closed}/")
