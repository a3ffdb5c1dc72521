from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_entra import FakeEntra  # noqa: E402

from presencesync.offline_plan import Plan, ResourceApi, TenantFacts, run_program  # noqa: E402
from presencesync.permissions import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE  # noqa: E402

TENANT_ID = "f2a33a3e-2d9b-4d2e-9a55-3c0e1a7b8c9d"
DEPLOYER = "0a1b2c3d-0000-4000-8000-00000000de01"
SYNC_USER_ID = "5e5e5e5e-1111-4111-8111-111111111111"
SKYPE_SP = "7b7b7b7b-2222-4222-8222-222222222222"
GRAPH_SP = "8c8c8c8c-3333-4333-8333-333333333333"
SKYPE_SCOPES = {"Contacts.ReadWrite": "1c1c1c1c-4444-4444-8444-444444444444",
                "User.ReadWrite": "2d2d2d2d-5555-4555-8555-555555555555",
                "Meetings.ReadWrite": "3e3e3e3e-6666-4666-8666-666666666666"}
GRAPH_SCOPES = {"User.Read": "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
                "Presence.Read.All": "9c7a330d-35b3-4aa1-963d-cb2b9f927841",
                "Presence.Read": "76bc735e-aecd-4a1d-8b4c-2b915deabb79"}
GRAPH_ROLES = {"Presence.ReadWrite.All": "83cded22-8297-4ff6-a7fa-e97e9545a259",
               "Presence.Read.All": "a70e0c2d-e793-494c-94c4-118fa0a67f42",
               "User.ReadBasic.All": "97235f07-e226-4f63-ace3-39588e11d3a1"}
PASSWORD = "Sync-Us3r-Pa55word!"


EXAMPLE_STACK = ROOT / "Pulumi.dev.yaml"
# A partner's repository replaces the example stack by its own (README, "Many tenants"): tests of the
# example itself skip there, all others bring their own stacks.
needs_example_stack = pytest.mark.skipif(not EXAMPLE_STACK.exists(),
                                         reason="Pulumi.dev.yaml (the example stack) is not in this repository")


@pytest.fixture
def facts() -> TenantFacts:
    return TenantFacts(
        tenant_id=TENANT_ID, deployer_object_id=DEPLOYER, default_domain="contoso.onmicrosoft.com",
        resource_apis={SKYPE_FOR_BUSINESS_ONLINE: ResourceApi(SKYPE_SP, SKYPE_SCOPES),
                       MICROSOFT_GRAPH: ResourceApi(GRAPH_SP, GRAPH_SCOPES, GRAPH_ROLES)},
        users={"sync@contoso.com": SYNC_USER_ID})


def stack_config(**overrides: Any) -> dict[str, str]:
    """A minimal valid stack config; overrides are `key=value` (None removes the key)."""
    config: dict[str, Any] = {"syncUser": {"userPrincipalName": "sync@contoso.com"}, "syncUserPassword": PASSWORD}
    config.update(overrides)
    return {f"presencesync:{k}" if ":" not in k else k: v if isinstance(v, str) else json.dumps(v)
            for k, v in config.items() if v is not None}


@pytest.fixture
def plan(facts: TenantFacts):
    def run(**overrides: Any) -> Plan:
        return run_program(stack_config(**overrides), facts, secret_keys=("presencesync:syncUserPassword",))
    return run


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeEntra]:
    server = FakeEntra(tmp_path)
    yield server
    server.close()
