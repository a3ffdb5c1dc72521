"""Several sync users (syncUsers, syncUserPasswords) and sizing to the tenant (watchedUsers): one line for each
mistake, and the CLI's gate modelled for keys neither of which is required."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import DEPLOYER_APP, DEPLOYER_SECRET, PASSWORD, SECURE, TENANT_ID
from fake_entra import User

from presencesync.clouds import endpoints_for
from presencesync.config import ConfigError, load_settings
from presencesync.credentials import graph_token_source
from presencesync.graph import Call, Deadline, Graph, GraphError
from presencesync.presence_users import PRESENCE_USERS, presence_users_warning
from presencesync.project_config import apply_gate, load_project, stack_settings
from presencesync.stack_file import read_stack_config
from presencesync.sync_users import needed

NOW = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
SKU = "18181a46-0d4e-45cd-891e-60aabd171b4e"
ENCRYPTED = SECURE  # a service-manager ciphertext, as conftest explains


def created(upn: str) -> dict:
    return {"userPrincipalName": upn, "create": True, "usageLocation": "DK", "licenseSkuId": SKU}


THREE = [created("sync1@contoso.com"), created("sync2@contoso.com"), {"userPrincipalName": "novus@contoso.com"}]
PASSWORDS = {"sync1@contoso.com": PASSWORD, "sync2@contoso.com": PASSWORD + "2", "novus@contoso.com": "given"}


def config(**keys) -> dict[str, str]:
    return {"azuread:tenantId": TENANT_ID,
            **{f"presencesync:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in keys.items() if v is not None}}


def problems(**keys) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_settings(config(**keys), now=NOW)
    return raised.value.problems


def test_a_collection_in_novus_page_order_with_each_password():
    settings = load_settings(config(syncUsers=THREE, syncUserPasswords=PASSWORDS, watchedUsers="700"), now=NOW)
    assert [u.user_principal_name for u in settings.sync_users] == [u["userPrincipalName"] for u in THREE]
    assert [p.reveal() for p in settings.sync_user_passwords] == list(PASSWORDS.values())
    assert settings.sync_user == settings.sync_users[0] and settings.sync_user_password.reveal() == PASSWORD
    assert settings.watched_users == 700


def test_the_one_user_form_means_what_it_meant():
    settings = load_settings(config(syncUser={"userPrincipalName": "sync@contoso.com"}, syncUserPassword=PASSWORD),
                             now=NOW)
    assert [u.user_principal_name for u in settings.sync_users] == ["sync@contoso.com"]
    assert settings.sync_user_password.reveal() == PASSWORD and settings.watched_users is None


@pytest.mark.parametrize(("keys", "expected"), [
    ({"syncUser": {"userPrincipalName": "a@contoso.com"}, "syncUserPassword": PASSWORD, "syncUsers": THREE,
      "syncUserPasswords": PASSWORDS},
     ["presencesync:syncUsers: cannot be combined with presencesync:syncUser; keep one form (for several sync users "
      "list them all in syncUsers, their passwords in syncUserPasswords)"]),
    ({"syncUsers": [*THREE, {"userPrincipalName": "SYNC1@Contoso.com"}], "syncUserPasswords": PASSWORDS},
     ["presencesync:syncUsers[3].userPrincipalName: 'SYNC1@Contoso.com' is listed already as syncUsers[0] (names "
      "are case-insensitive); remove one"]),
    ({"syncUsers": THREE, "syncUserPasswords": {k: v for k, v in PASSWORDS.items() if k != "sync2@contoso.com"}},
     ["presencesync:syncUserPasswords: has no password for sync2@contoso.com; set it with pulumi config set --secret "
      "--path 'presencesync:syncUserPasswords[\"sync2@contoso.com\"]'"]),
    ({"syncUsers": THREE, "syncUserPasswords": {**PASSWORDS, "old@contoso.com": "x"}},
     ["presencesync:syncUserPasswords: holds a password for old@contoso.com, who is not in presencesync:syncUsers; "
      "add the user to syncUsers or remove the password"]),
    ({"syncUsers": [], "syncUserPasswords": {}},
     ["presencesync:syncUsers: is an empty list; list at least one sync user, or use presencesync:syncUser"]),
    ({"syncUsers": THREE, "syncUserPasswords": PASSWORDS, "watchedUsers": "-5"},
     ["presencesync:watchedUsers: '-5' is not a positive whole number; set how many people Novus follows, e.g. "
      "2400, or remove the key"]),
    ({"syncUsers": THREE, "syncUserPasswords": PASSWORDS, "watchedUsers": "2.5"},
     ["presencesync:watchedUsers: '2.5' is not a positive whole number; set how many people Novus follows, e.g. "
      "2400, or remove the key"]),
    ({"syncUsers": THREE, "syncUserPasswords": PASSWORDS, "watchedUsers": "2400"},
     ["presencesync:syncUsers: 2400 watched users need 10 sync users with profile ucwa (250 each), and the stack "
      "has 3; add 7 to presencesync:syncUsers (with their passwords in presencesync:syncUserPasswords)"]),
    ({"profile": "graph", "syncUser": {"userPrincipalName": "a@contoso.com"}, "syncUserPassword": PASSWORD,
      "watchedUsers": "2400"},
     ["presencesync:syncUsers: 2400 watched users need 4 sync users with profile graph (650 each), and the stack "
      "has 1; add 3 to presencesync:syncUsers (with their passwords in presencesync:syncUserPasswords)"]),
    ({"syncUsers": THREE, "syncUserPasswords": PASSWORDS, "syncUserPassword": PASSWORD},
     ["presencesync:syncUserPassword: belongs with presencesync:syncUser; with syncUsers give each password in "
      "presencesync:syncUserPasswords"]),
    ({"syncUsers": [created("a@contoso.com"), {**created("b@contoso.com"),
                                               "licenseSkuId": "6fd2c87f-b296-42f0-b197-1e91e994b900"}],
      "syncUserPasswords": {"a@contoso.com": PASSWORD, "b@contoso.com": PASSWORD}},
     ["presencesync:syncUsers: names 2 licence SKUs (18181a46-0d4e-45cd-891e-60aabd171b4e, 6fd2c87f-b296-42f0-b197-"
      "1e91e994b900), and the created sync users share one licence group; give them one licenseSkuId"]),
    ({"syncUsers": [{**created("a@contoso.com"), "usageLocation": "Denmark"}],
      "syncUserPasswords": {"a@contoso.com": PASSWORD}},
     ["presencesync:syncUsers[0].usageLocation: 'Denmark' is not a two-letter country code, e.g. DK"]),
    ({}, ["presencesync:syncUser: is missing; set it with pulumi config set --path presencesync:syncUser."
          "userPrincipalName sync@contoso.com (or list several sync users in presencesync:syncUsers)",
          "presencesync:syncUserPassword: is missing; set it with pulumi config set --secret "
          "presencesync:syncUserPassword"]),
], ids=["both forms", "a name twice", "a password missing", "a password for no one", "an empty list",
        "watchedUsers negative", "watchedUsers not whole", "too few for ucwa", "too few for graph",
        "a one-user password with the list", "two SKUs", "an item's own rule", "neither form"])
def test_bad_input_is_one_line_each(keys, expected):
    assert problems(**keys) == expected


def test_the_number_needed_per_profile():
    assert [needed("graph", n) for n in (1, 650, 651, 2400)] == [1, 1, 2, 4]
    assert [needed("ucwa", n) for n in (1, 250, 251, 2400)] == [1, 1, 2, 10]


def stack(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / "Pulumi.customer-a.yaml"
    path.write_text(json.dumps({"config": {"azuread:tenantId": TENANT_ID, **values}}))
    return path


def test_the_gate_requires_neither_form_and_passes_a_collection_with_passwords_set_with_path(tmp_path):
    # `pulumi config set --secret --path 'presencesync:syncUserPasswords["sync2@contoso.com"]'` writes an object
    # whose members are {secure: ...}; the CLI counts an object as secure when any member is (sdk/go/common/
    # resource/config/object.go, object.Secure), and fills in the declared defaults of the one-user form.
    path = stack(tmp_path, {"presencesync:syncUsers": THREE,
                            "presencesync:syncUserPasswords": {upn: ENCRYPTED for upn in PASSWORDS}})
    values, refused = apply_gate(load_project(), "customer-a", read_stack_config(path))
    assert refused == []
    assert values["presencesync:syncUser"] == "{}" and values["presencesync:syncUserPassword"] == ""
    settings, _, _ = stack_settings(path, "customer-a", NOW)
    assert len(settings.sync_users) == 3


def test_a_password_in_plain_text_is_refused_offline_member_by_member(tmp_path):
    # The CLI's gate would pass this object (one member is secure); the program must not.
    path = stack(tmp_path, {"presencesync:syncUsers": THREE, "presencesync:syncUserPasswords": {
        "sync1@contoso.com": ENCRYPTED, "sync2@contoso.com": "plain", "novus@contoso.com": ENCRYPTED}})
    with pytest.raises(ConfigError) as raised:
        stack_settings(path, "customer-a", NOW)
    assert raised.value.problems == [
        "presencesync:syncUserPasswords[\"sync2@contoso.com\"]: is in plain text in the stack file; remove it and set "
        "it with pulumi config set --secret --path 'presencesync:syncUserPasswords[\"sync2@contoso.com\"]' PASSWORD"]
    path = stack(tmp_path, {"presencesync:syncUsers": THREE, "presencesync:syncUserPasswords": PASSWORDS})
    with pytest.raises(ConfigError) as raised:
        stack_settings(path, "customer-a", NOW)
    assert raised.value.problems[0].startswith("presencesync:syncUserPasswords: must be encrypted")



def test_the_preflight_read_counts_enabled_teams_users_in_one_batched_request(tenant, monkeypatch):
    """The read the preflight adds to its $batch (issue 19), against the loopback fake: the advanced query's
    header travels inside the batch; without it Graph refuses the query."""
    d = tenant.directory
    for i in range(700):
        d.users[f"person{i}@contoso.com"] = User(f"person{i}@contoso.com", "x", enabled=i % 10 != 0,
                                                 licensed=i % 7 != 0)  # an unlicensed user has no Teams plan
    expected = sum(1 for u in d.users.values() if u.enabled and u.licensed)
    env = {**tenant.env(), "ARM_CLIENT_ID": DEPLOYER_APP, "ARM_CLIENT_SECRET": DEPLOYER_SECRET,
           "ARM_TENANT_ID": d.tenant_id}
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", env["REQUESTS_CA_BUNDLE"])
    token = graph_token_source(endpoints_for("public", env), env, interactive=False).token()
    graph = Graph(tenant.url, lambda: token, Deadline(30))
    domains = Call("GET", "/domains", what="domains")
    answers = graph.batch([PRESENCE_USERS, domains])
    assert answers[0].body["@odata.count"] == expected and len(answers[0].body["value"]) == 1
    with pytest.raises(GraphError, match="Request_UnsupportedQuery"):
        graph.batch([Call(PRESENCE_USERS.method, PRESENCE_USERS.url, what="count"), domains])
    assert presence_users_warning(expected, "graph", None, 1) == (
        f"presencesync:watchedUsers: not set, and the tenant has {expected} enabled users with Teams, who need 1 sync "
        "users with profile graph (the stack has 1); set watchedUsers to how many people Novus follows")
    assert presence_users_warning(expected, "ucwa", 400, 3).startswith(
        f"presencesync:watchedUsers: 400, and the tenant has {expected} enabled users with Teams, who need 3 sync users")
    assert presence_users_warning(expected, "ucwa", expected, 3) is None


def test_check_says_how_many_sync_users_the_profile_needs_and_stops_when_too_few(tmp_path):
    from conftest import run

    base = {"azuread:tenantId": TENANT_ID, "presencesync:profile": "graph", "presencesync:syncUsers": THREE,
            "presencesync:syncUserPasswords": {upn: SECURE for upn in PASSWORDS}}
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text(json.dumps({"config": {**base, "presencesync:watchedUsers": 1300}}))
    done = run("check", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert "sync users: 3; 1300 watched users need 2 with profile graph (650 each)" in done.stdout.splitlines()
    path.write_text(json.dumps({"config": {**base, "presencesync:watchedUsers": 2400}}))
    done = run("check", "--config", str(path))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: presencesync:syncUsers: 2400 watched users need 4 sync users with profile graph (650 each), and the "
        "stack has 3; add 1 to presencesync:syncUsers (with their passwords in presencesync:syncUserPasswords)"]
