"""How many HTTP requests and sequential round trips post-deploy makes, against the loopback fake.

    .venv/bin/python scripts/benchmark_postdeploy.py

A fresh tenant in `consent: hook` mode (no grants yet), then a rerun (everything in place). The
client is sequential, so each request is one round trip; `$batch` is what keeps the count low.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_entra import App, FakeEntra, User  # noqa: E402

from presencesync.config import load_settings  # noqa: E402
from presencesync.permissions import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE  # noqa: E402
from presencesync.postdeploy import Deployed, post_deploy  # noqa: E402


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
        settings = load_settings({"presencesync:consent": "hook", "presencesync:syncUserPassword": "pw",
                                  "presencesync:syncUser": '{"userPrincipalName": "sync@contoso.com"}'},
                                 now=datetime.now(UTC))
        deployed = Deployed.from_outputs({
            "novus": {"tenantId": "contoso.com", "clientId": app.client_id, "clientSecret": "secret",
                      "userName": "sync@contoso.com", "password": "pw"},
            "directoryTenantId": d.tenant_id, "applicationObjectId": app.object_id,
            "servicePrincipalObjectId": d.service_principals[app.client_id]["id"],
            "clientSecretEndDate": "2100-12-31T00:00:00Z", "adminConsentUrl": "https://example.invalid"})
        print(f"{'run':<14}{'HTTP requests':>15}{'round trips':>13}{'token':>7}{'Graph':>7}{'writes':>8}")
        for run in ("fresh tenant", "rerun"):
            before, writes_before = len([s for s in d.seen if not s.batched]), len(d.writes())
            post_deploy(settings, deployed, check=False, now=datetime.now(UTC), say=lambda _: None, env=env)
            sent = [s for s in d.seen if not s.batched][before:]
            token = sum(1 for s in sent if not s.path.startswith("/v1.0/"))
            print(f"{run:<14}{len(sent):>15}{len(sent):>13}{token:>7}{len(sent) - token:>7}"
                  f"{len(d.writes()) - writes_before:>8}")
        fake.close()


if __name__ == "__main__":
    main()
