"""The policy pack served as the engine serves it, and called over gRPC as the engine calls it.

The launcher is Pulumi's own (`python -u -m pulumi.policy <engineAddress> .` in the pack's directory,
as the CLI's Python policy runtime starts it); the pack prints its port, and the engine calls
GetAnalyzerInfo, Configure and Analyze (pulumi/pulumi pkg/resource/plugin/analyzer_plugin.go). The
stack's config reaches the pack as PULUMI_CONFIG (analyzer_plugin.go, `constructEnv`). Resources go as
the engine sends them: camelCase inputs in a Struct, secrets in the engine's secret envelope, unknowns
as the unknown sentinel during preview. The pack's own lookups (deployer, permission IDs) go to the
loopback fake with the deployer's credentials.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from conftest import DEPLOYER, DEPLOYER_APP, DEPLOYER_SECRET, ROOT, SKYPE_SCOPES
from fake_entra import FakeEntra
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from presencesync import policies

SECRET = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}  # the engine's secret marker
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's unknown value in a preview
MANDATORY = analyzer_pb2.MANDATORY


def serve(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], analyzer_pb2_grpc.AnalyzerStub]:
    pack = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."], cwd=ROOT / "policy",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert pack.stdout is not None
    port = pack.stdout.readline().decode().strip()
    assert port.isdigit(), (pack.stderr.read() if pack.stderr else b"").decode()[-2000:]
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return pack, analyzer_pb2_grpc.AnalyzerStub(channel)


@pytest.fixture
def pack(tenant: FakeEntra) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("ARM_", "PRESENCESYNC_"))}, **tenant.env(),
           "ARM_CLIENT_ID": DEPLOYER_APP, "ARM_CLIENT_SECRET": DEPLOYER_SECRET,
           "ARM_TENANT_ID": tenant.directory.tenant_id, "PATH": os.path.dirname(sys.executable),
           "PULUMI_CONFIG": json.dumps({"azuread:environment": "public"})}
    process, stub = serve(env)
    yield stub
    process.kill()
    process.wait()


def analyze(stub: analyzer_pb2_grpc.AnalyzerStub, resource_type: str, props: dict[str, Any]
            ) -> list[analyzer_pb2.AnalyzeDiagnostic]:
    request = analyzer_pb2.AnalyzeRequest(type=resource_type, properties=json_format.ParseDict(props, struct_pb2.Struct()),
                                          urn=f"urn:pulumi:dev::presencesync::{resource_type}::x", name="x")
    return list(stub.Analyze(request, timeout=60).diagnostics)


def application(plan) -> dict[str, Any]:
    return dict(plan().one(policies.APPLICATION).inputs)


def test_the_pack_describes_itself_and_takes_config(pack):
    info = pack.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == "presencesync"
    assert {p.name for p in info.policies} == {p.name for p in policies.policies(lambda: "", lambda _: {})}
    levels = {p.name: p.enforcementLevel for p in info.policies}
    assert levels["public-client-only-for-ucwa"] == analyzer_pb2.ADVISORY and levels["no-personal-accounts"] == MANDATORY
    assert levels["secret-at-most-two-years"] == MANDATORY  # a never-expiring secret included


def test_compliant_resources_pass_and_violations_are_named(pack, plan, tenant):
    ucwa = application(plan)
    assert ucwa["owners"] and DEPLOYER in ucwa["owners"]
    # The pack finds the deployer as the fake's token names it: the deploying app's service principal.
    deployer = tenant.directory.service_principals[DEPLOYER_APP]["id"]
    ucwa = {**ucwa, "owners": [*ucwa["owners"], deployer]}
    assert analyze(pack, policies.APPLICATION, ucwa) == []
    swapped = json.loads(json.dumps(ucwa).replace(SKYPE_SCOPES["User.ReadWrite"], SKYPE_SCOPES["Meetings.ReadWrite"]))
    found = analyze(pack, policies.APPLICATION, swapped)
    assert [(d.policyName, d.enforcementLevel) for d in found] == [("expected-permissions-only", MANDATORY)]
    grant = dict(plan().of_type(policies.DELEGATED_GRANT)[0].inputs)
    assert analyze(pack, policies.DELEGATED_GRANT, {**grant, "claimValues": list(reversed(grant["claimValues"]))}) == []
    claims = [*grant["claimValues"], "Meetings.ReadWrite"]
    wider = analyze(pack, policies.DELEGATED_GRANT, {**grant, "claimValues": claims})
    assert f"holds {' '.join(sorted(claims))}, not" in wider[0].message  # the names, not a proxy object
    assert "_ListProxy" not in wider[0].message


def test_secrets_arrive_in_the_envelope_and_relative_end_dates_count(pack, plan):
    secret = dict(plan().one(policies.PASSWORD).inputs)
    relative = {k: v for k, v in secret.items() if k != "endDate"}
    found = analyze(pack, policies.PASSWORD, {**relative, "endDateRelative": {**SECRET, "value": "43800h"}})
    assert [(d.policyName, d.enforcementLevel) for d in found] == [("secret-at-most-two-years", MANDATORY)]
    assert analyze(pack, policies.PASSWORD, {**secret, "displayName": {**SECRET, "value": "presencesync (Novus)"}}) == []


def test_an_unknown_input_in_a_preview_is_never_a_pass_or_a_failure(pack, plan):
    ucwa = {**application(plan), "owners": UNKNOWN}
    found = analyze(pack, policies.APPLICATION, ucwa)
    assert [(d.policyName, d.enforcementLevel) for d in found] == [("deployer-among-owners", analyzer_pb2.ADVISORY)]
    assert "during preview" in found[0].message


def test_configure_allows_a_multi_tenant_app(pack, plan, tenant):
    deployer = tenant.directory.service_principals[DEPLOYER_APP]["id"]
    multi = {**application(plan), "signInAudience": "AzureADMultipleOrgs"}
    multi["owners"] = [*multi["owners"], deployer]
    assert [d.policyName for d in analyze(pack, policies.APPLICATION, multi)] == ["single-tenant-audience"]
    config = analyzer_pb2.PolicyConfig(enforcementLevel=MANDATORY,
                                       properties=json_format.ParseDict({"allowMultiTenant": True}, struct_pb2.Struct()))
    pack.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={"single-tenant-audience": config}), timeout=30)
    assert analyze(pack, policies.APPLICATION, multi) == []


def test_the_stacks_cloud_comes_from_its_config(plan):
    """Without credentials nothing is signed in to (no network), and the failure names the stack's cloud."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("ARM_", "PRESENCESYNC_"))},
           "PATH": os.path.dirname(sys.executable), "PULUMI_CONFIG": json.dumps({"azuread:environment": "china"})}
    process, stub = serve(env)
    try:
        found = analyze(stub, policies.APPLICATION, application(plan))
    finally:
        process.kill()
        process.wait()
    messages = [d.message for d in found if d.policyName == "deployer-among-owners"]
    assert messages and "(cloud china)" in messages[0]
