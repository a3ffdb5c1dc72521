"""Post-deploy with a collection of sync users, against the loopback fake with the real msal and requests:
each user's sign-in, licence and ownership proven side by side, each password's expiry from what Graph says
of the user and its domain, and a password the customer changed behind the stack."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from conftest import CLIENT_ID, CLIENT_SECRET, DEPLOYER_APP, DEPLOYER_SECRET, outputs, sequential_round_trips
from fake_entra import App, FakeEntra, User

from presencesync.config import load_settings
from presencesync.permissions import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE
from presencesync.postdeploy import post_deploy
from presencesync.stack_outputs import Deployed

NOW = datetime.now(UTC).replace(microsecond=0)
LATENCY = 0.3  # a round trip; long beside the scheduling jitter of a loaded machine
PASSWORDS = {"soon@contoso.com": "Soon-pa55word!", "changed@contoso.com": "Stack-pa55word!",
             "never@contoso.com": "Never-pa55word!", "later@contoso.com": "Later-pa55word!"}


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def collection(tenant: FakeEntra) -> FakeEntra:
    d = tenant.directory
    d.domains.append("contoso.com")
    d.password_validity["contoso.com"] = 90
    for upn, password in PASSWORDS.items():
        d.users[upn] = User(upn, password, password_policies=None, last_password_change=_iso(NOW - timedelta(days=5)))
    d.users["soon@contoso.com"].last_password_change = _iso(NOW - timedelta(days=80))  # 90-day policy: 10 days left
    d.users["never@contoso.com"].password_policies = "DisablePasswordExpiration"
    # An admin set a new password after the deployment: the stack (and Novus) hold the old one.
    d.users["changed@contoso.com"].password = "Admins-new-pa55word!"
    d.users["changed@contoso.com"].last_password_change = _iso(NOW - timedelta(days=1))
    d.add_app(App(CLIENT_ID, {CLIENT_SECRET}, owners={u.id for u in d.users.values()}))
    d.add_grant(CLIENT_ID, SKYPE_FOR_BUSINESS_ONLINE, "Contacts.ReadWrite User.ReadWrite")
    d.add_grant(CLIENT_ID, MICROSOFT_GRAPH, "User.Read")
    return tenant


def _run(fake: FakeEntra, names: list[str]) -> tuple[list[str], list[str], dict[str, str], int]:
    """Post-deploy --check for the named sync users; the drift, what it said, the expiries and the round trips."""
    users = [{"userPrincipalName": n} for n in names]
    settings = load_settings({"azuread:tenantId": fake.directory.tenant_id, "presencesync:syncUsers": json.dumps(users),
                              "presencesync:syncUserPasswords": json.dumps({n: PASSWORDS[n] for n in names})}, now=NOW)
    outs = outputs(fake)
    outs["novus"] = {**outs["novus"], "userName": names[0], "password": PASSWORDS[names[0]],
                     "syncUsers": [{"userName": n, "password": PASSWORDS[n]} for n in names]}
    env = {**fake.env(), "ARM_CLIENT_ID": DEPLOYER_APP, "ARM_CLIENT_SECRET": DEPLOYER_SECRET,
           "ARM_TENANT_ID": fake.directory.tenant_id}
    said: list[str] = []
    expiries: dict[str, str] = {}
    d = fake.directory
    before = len(d.seen)
    d.latency = LATENCY
    previous = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = env["REQUESTS_CA_BUNDLE"]
    try:
        drift = post_deploy(settings, Deployed.from_outputs(outs), check=True, now=NOW, say=said.append, env=env,
                            password_expiry=expiries)
    finally:
        d.latency = 0.0
        if previous is None:
            os.environ.pop("REQUESTS_CA_BUNDLE")
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = previous
    return drift, said, expiries, sequential_round_trips([s.at for s in d.seen[before:] if not s.batched], LATENCY)


def test_four_sync_users_dates_drift_and_round_trips(collection):
    drift, said, expiries, four = _run(collection, list(PASSWORDS))
    assert expiries == {"soon@contoso.com": _iso(NOW + timedelta(days=10)), "never@contoso.com": "never",
                        "later@contoso.com": _iso(NOW + timedelta(days=85))}
    changed = _iso(NOW - timedelta(days=1))
    assert (f"sync user changed@contoso.com: the customer changed the sync user's password on {changed}: Novus holds "
            "the old one; set the new one in the stack (syncUserPassword or syncUserPasswords) and on the Novus page, "
            "or reset it to the stack's") in drift
    assert any(line.startswith(f"sync user soon@contoso.com: the password expires {_iso(NOW + timedelta(days=10))}, "
                               "within 30 days") for line in drift)
    assert not any("never@contoso.com" in line or "later@contoso.com" in line for line in drift)
    assert f"sync user later@contoso.com: password expires {_iso(NOW + timedelta(days=85))}" in said
    # Every sync user's sign-in for both APIs went out, and the licence and ownership checks of those signed in.
    assert {s for s in said if s.startswith("sign-in as")} == {
        f"sign-in as {n} for {api}: ok" for n in ("soon@contoso.com", "never@contoso.com", "later@contoso.com")
        for api in ("Skype for Business Online", "Microsoft Graph")}
    # Side by side: four sync users take no more sequential round trips than one.
    _, _, _, one = _run(collection, ["later@contoso.com"])
    assert four == one, (one, four)


def test_the_hand_over_lists_every_sync_user_in_page_order_passwords_only_when_shown(collection, tmp_path):
    from presencesync.handover import handover_table, write_handover

    names = ["later@contoso.com", "never@contoso.com"]
    outs = outputs(collection)
    outs["novus"] = {**outs["novus"], "userName": names[0], "password": PASSWORDS[names[0]],
                     "syncUsers": [{"userName": n, "password": PASSWORDS[n]} for n in names]}
    deployed = Deployed.from_outputs(outs)
    assert handover_table(deployed, show_secrets=False)[3:] == [
        "User name 1    later@contoso.com", "Password 1     ********",
        "User name 2    never@contoso.com", "Password 2     ********"]
    assert "Password 2     Never-pa55word!" in handover_table(deployed, show_secrets=True)
    write_handover(tmp_path / "novus.json", deployed)
    written = json.loads((tmp_path / "novus.json").read_text())
    assert [u["userName"] for u in written["syncUsers"]] == names
