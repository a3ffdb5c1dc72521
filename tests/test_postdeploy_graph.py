"""Post-deploy for profile `graph` and for rotated secrets, against the loopback fake (real msal and requests)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    DEPLOYER_APP,
    DEPLOYER_SECRET,
    GRAPH_ROLES,
    GRAPH_SCOPES,
    PASSWORD,
    UPN,
    assert_no_secret,
    outputs,
    post_deploy,
)
from fake_entra import App, FakeEntra, Fault, User

from presencesync.permissions import MICROSOFT_GRAPH

ROLES = ("Presence.ReadWrite.All", "User.ReadBasic.All")


@pytest.fixture
def tenant(fake: FakeEntra) -> FakeEntra:
    d = fake.directory
    d.add_app(App(DEPLOYER_APP, {DEPLOYER_SECRET}))
    d.add_resource_api(MICROSOFT_GRAPH, GRAPH_SCOPES, GRAPH_ROLES)
    user = User(UPN, PASSWORD, availability="Busy")
    d.users[UPN] = user
    d.add_app(App(CLIENT_ID, {CLIENT_SECRET}, owners={user.id}, public_client=False))
    return fake


def consent(fake: FakeEntra, roles: tuple[str, ...] = ROLES) -> None:
    fake.directory.add_grant(CLIENT_ID, MICROSOFT_GRAPH, "Presence.Read.All User.Read")
    for role in roles:
        fake.directory.add_role_assignment(CLIENT_ID, MICROSOFT_GRAPH, role)


def graph_deploy(fake: FakeEntra, tmp_path, *args: str, **kwargs):
    return post_deploy(fake, tmp_path, *args, profile="graph", **kwargs)


def test_verifies_app_token_roles_and_reads_the_sync_users_presence(tenant, tmp_path):
    consent(tenant)
    done = graph_deploy(tenant, tmp_path, deployer=False)
    assert done.returncode == 0, done.stderr
    d = tenant.directory
    app_tokens = [r for r in d.token_requests if r.get("grant_type") == "client_credentials"]
    assert [r["scope"] for r in app_tokens] == [f"{tenant.url}/.default"]
    passwords = [set(r["scope"].split()) for r in d.token_requests if r.get("grant_type") == "password"]
    assert passwords == [{f"{tenant.url}/Presence.Read.All", f"{tenant.url}/User.Read", "offline_access", "openid",
                          "profile"}]
    assert any(s.path == f"/v1.0/users/{d.users[UPN].id}/presence" for s in d.seen)
    assert "application access to Microsoft Graph (Presence.ReadWrite.All, User.ReadBasic.All): ok" in done.stderr
    assert d.writes() == []
    assert json.loads((tmp_path / "novus-config.t.json").read_text())["clientSecret"] == CLIENT_SECRET
    assert_no_secret(done, tenant)


def test_hook_mode_assigns_the_app_roles_once(tenant, tmp_path):
    done = graph_deploy(tenant, tmp_path, consent_mode="hook")
    assert done.returncode == 0, done.stderr
    d = tenant.directory
    assert d.app_roles(CLIENT_ID) == sorted(ROLES)
    assert [g["scope"] for g in d.grants.values()] == ["Presence.Read.All User.Read"]
    writes = len(d.writes())
    assert writes == 3  # one delegated grant, two app role assignments
    again = graph_deploy(tenant, tmp_path, consent_mode="hook")
    assert again.returncode == 0, again.stderr
    assert len(d.writes()) == writes and len(d.role_assignments) == 2
    assert_no_secret(again, tenant)


def test_check_reports_a_missing_app_role_without_writing(tenant, tmp_path):
    consent(tenant, roles=("User.ReadBasic.All",))
    done = graph_deploy(tenant, tmp_path, "--check", consent_mode="hook")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert "drift: consent: Microsoft Graph application permission Presence.ReadWrite.All is not granted" in lines
    assert any(line.startswith("drift: application access: the app's token lacks Presence.ReadWrite.All: "
                               "admin consent is missing") for line in lines)
    assert tenant.directory.writes() == []


def test_role_granted_late_is_waited_for(tenant, tmp_path):
    """In resource mode the assignment can replicate after the first token: post-deploy waits for it."""
    consent(tenant, roles=("User.ReadBasic.All",))
    d = tenant.directory
    threading.Timer(2.0, d.add_role_assignment, (CLIENT_ID, MICROSOFT_GRAPH, "Presence.ReadWrite.All")).start()
    done = graph_deploy(tenant, tmp_path, deployer=False, timeout=30)
    assert done.returncode == 0, done.stderr
    assert len([r for r in d.token_requests if r.get("grant_type") == "client_credentials"]) >= 2


def test_presence_read_failures_are_mapped(tenant, tmp_path):
    consent(tenant)
    tenant.directory.faults.append(Fault("GET", r"/presence$", 404, body={"error": {
        "code": "NotFound", "message": "The requested user is not found."}}))
    done = graph_deploy(tenant, tmp_path, "--check", deployer=False)
    assert done.returncode == 2
    assert "drift: presence read: presence read: Graph answered 404 NotFound" in done.stderr
    assert "give it a Teams licence" in done.stderr


def test_rotation_schedule_is_told_and_an_overdue_rotation_is_drift(tenant, tmp_path):
    consent(tenant)
    now = datetime.now(UTC)
    day = timedelta(days=1)
    rotated = {**outputs(tenant, (now + 170 * day).strftime("%Y-%m-%dT00:00:00Z")),
               "previousClientSecretEndDate": (now + 10 * day).strftime("%Y-%m-%dT00:00:00Z"),
               "nextSecretRotation": (now + 10 * day).strftime("%Y-%m-%dT00:00:00Z")}
    (tmp_path / "novus-config.t.json").write_text(json.dumps({"clientSecret": "the-previous-secret"}))
    done = graph_deploy(tenant, tmp_path, deployer=False, outs=rotated)
    assert done.returncode == 0, done.stderr
    assert f"Novus must hold the one ending {rotated['clientSecretEndDate']}" in done.stderr
    assert (f"the client secret changed: enter the new one on the Novus page before "
            f"{rotated['previousClientSecretEndDate']}") in done.stderr
    overdue = {**rotated, "nextSecretRotation": (now - day).strftime("%Y-%m-%dT00:00:00Z")}
    done = graph_deploy(tenant, tmp_path, "--check", deployer=False, outs=overdue)
    assert done.returncode == 2
    assert f"drift: client secret: a rotation is due since {overdue['nextSecretRotation']}: run pulumi up, then " \
        "enter the new secret in Novus" in done.stderr.splitlines()
