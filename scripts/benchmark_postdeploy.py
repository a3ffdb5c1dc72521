"""How many HTTP requests and sequential round trips post-deploy makes, against the loopback fake.

    .venv/bin/python scripts/benchmark_postdeploy.py

A fresh tenant in `consent: hook` mode (no grants yet), then a rerun (everything in place). The fake
holds each answer back LATENCY seconds, as a network would. Requests that go out side by side share a
round trip: the sequential round trips are the waves of requests, a wave being those sent within
half a LATENCY of its first (the wall time also holds local work: TLS handshakes, msal's own).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LATENCY = 0.150  # seconds per round trip
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_entra import App, FakeEntra, User  # noqa: E402

from presencesync.config import load_settings  # noqa: E402
from presencesync.permissions import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE  # noqa: E402
from presencesync.postdeploy import post_deploy  # noqa: E402
from presencesync.stack_outputs import Deployed  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fake = FakeEntra(Path(tmp))
        d = fake.directory
        d.add_app(App("d0d0d0d0-aaaa-4aaa-8aaa-aaaaaaaaaaaa", {"deployer"}))
        d.add_resource_api(SKYPE_FOR_BUSINESS_ONLINE, {"Contacts.ReadWrite": "1c1c1c1c-4444-4444-8444-444444444444",
                                                       "User.ReadWrite": "2d2d2d2d-5555-4555-8555-555555555555"})
        d.add_resource_api(MICROSOFT_GRAPH, {"User.Read": "e1fe6dd8-ba31-4d61-89e7-88639da4683d"})
        user = d.users["sync@contoso.com"] = User("sync@contoso.com", "pw")
        app = d.add_app(App("c1c1c1c1-9999-4999-8999-999999999999", {"secret"}, owners={user.id}))
        env = {**fake.env(), "ARM_CLIENT_ID": "d0d0d0d0-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "ARM_CLIENT_SECRET": "deployer",
               "ARM_TENANT_ID": d.tenant_id}
        os.environ["REQUESTS_CA_BUNDLE"] = env["REQUESTS_CA_BUNDLE"]
        settings = load_settings({"azuread:tenantId": d.tenant_id, "presencesync:consent": "hook",
                                  "presencesync:syncUserPassword": "pw",
                                  "presencesync:syncUser": '{"userPrincipalName": "sync@contoso.com"}'},
                                 now=datetime.now(UTC))
        deployed = Deployed.from_outputs({
            "novus": {"tenantId": "contoso.com", "clientId": app.client_id, "clientSecret": "secret",
                      "userName": "sync@contoso.com", "password": "pw"},
            "directoryTenantId": d.tenant_id, "applicationObjectId": app.object_id,
            "servicePrincipalObjectId": d.service_principals[app.client_id]["id"],
            "clientSecretEndDate": "2100-12-31T00:00:00Z", "adminConsentUrl": "https://example.invalid"})
        d.latency = LATENCY
        print(f"{'run':<14}{'HTTP requests':>15}{'round trips':>13}{'seconds':>9}{'token':>7}{'Graph':>7}{'writes':>8}")
        for run in ("fresh tenant", "rerun"):
            before, writes_before = len([s for s in d.seen if not s.batched]), len(d.writes())
            started = time.monotonic()
            post_deploy(settings, deployed, check=False, now=datetime.now(UTC), say=lambda _: None, env=env)
            seconds = time.monotonic() - started
            sent = [s for s in d.seen if not s.batched][before:]
            token = sum(1 for s in sent if not s.path.startswith("/v1.0/"))
            print(f"{run:<14}{len(sent):>15}{_waves([s.at for s in sent]):>13}{seconds:>9.2f}{token:>7}"
                  f"{len(sent) - token:>7}{len(d.writes()) - writes_before:>8}")
        fake.close()


def _waves(starts: list[float]) -> int:
    waves, first = 0, None
    for at in sorted(starts):
        if first is None or at - first >= LATENCY / 2:
            waves, first = waves + 1, at
    return waves


if __name__ == "__main__":
    main()
