"""`fleet` through the real Automation API against a stand-in `pulumi` on PATH (tests/standin/pulumi)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from conftest import CLIENT_ID, CLIENT_SECRET, PASSWORD, ROOT, SKYPE_SCOPES, UPN, consent, deployer_env, outputs, run
from fake_entra import App, FakeEntra, User
from fake_entra_policies import default_app_management_policy, restriction

from presencesync.permissions import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE

STANDIN = ROOT / "tests" / "standin"
STACK_CONFIG = {"presencesync:syncUser": {"userPrincipalName": UPN},
                "presencesync:syncUserPassword": {"secure": "v1:x"}, "presencesync:postDeployTimeout": 20}


def project(tmp_path: Path, scenario: dict[str, dict], *, policy: bool = False) -> Path:
    directory = tmp_path / "repo"
    directory.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", directory / "Pulumi.yaml")
    for stack in scenario:
        (directory / f"Pulumi.{stack}.yaml").write_text(json.dumps({"config": STACK_CONFIG}))
    if policy:
        (directory / "policy").mkdir()
    (tmp_path / "scenario.json").write_text(json.dumps(scenario))
    return directory


def fleet(tmp_path: Path, directory: Path, *args: str, env: dict[str, str] | None = None):
    done = run("fleet", *args, "--project-dir", str(directory), env={
        "PATH": f"{STANDIN}{os.pathsep}{os.path.dirname(sys.executable)}",
        "FAKE_PULUMI_SCENARIO": str(tmp_path / "scenario.json"), "FAKE_PULUMI_LOG": str(tmp_path / "calls.jsonl"),
        **(env or {})})
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()] \
        if (tmp_path / "calls.jsonl").exists() else []
    return done, calls


def most_at_once(calls: list[dict], command: str) -> int:
    spans = [(c["started"], c["ended"]) for c in calls if c["argv"][0] == command]
    return max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)


def test_preview_runs_n_at_a_time_continues_past_a_failure_and_reports(tmp_path):
    scenario = {f"tenant-{i}": {"seconds": 1.0, "changes": {"same": 9}} for i in range(1, 6)}
    scenario["tenant-3"]["changes"] = {"same": 7, "update": 1, "create": 1}
    scenario["tenant-4"] = {"seconds": 0.2, "fail": "azuread:index:Application (application): 403 Forbidden"}
    scenario["tenant-slow"] = {"seconds": 3.0, "changes": {"same": 9}}
    directory = project(tmp_path, scenario, policy=True)
    done, calls = fleet(tmp_path, directory, "preview", "--parallel", "3")
    assert done.returncode == 1, done.stderr  # one tenant failed
    progress = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == 6 and progress[-1].startswith("[6/6] ")
    assert any(line.startswith("[") and "tenant-4: failed, 0 change(s)" in line and
               "pulumi exited 1: error: azuread:index:Application (application): 403 Forbidden" in line
               for line in progress)
    report = json.loads((directory / "fleet-preview.json").read_text())
    by_stack = {t["stack"]: t for t in report["tenants"]}
    assert list(by_stack) == sorted(scenario)
    assert report["counts"] == {"ok": 4, "changes": 1, "drifted": 0, "failed": 1}
    assert by_stack["tenant-3"]["result"] == "changes" and by_stack["tenant-3"]["changes"] == {"update": 1, "create": 1}
    assert by_stack["tenant-5"]["result"] == "ok"  # after the failure, the rest still ran
    table = done.stdout.splitlines()
    assert table[0].split() == ["tenant", "result", "changes", "seconds"]
    assert [line.split()[:3] for line in table[1:]] == [
        [t, by_stack[t]["result"], str(sum(by_stack[t]["changes"].values()))] for t in sorted(scenario)]
    # N at a time: never more than three previews at once, and three did overlap.
    assert most_at_once(calls, "preview") == 3
    # Without history the slow tenant may start last: list scheduling's bound, total / N + the longest.
    total, longest = sum(t["seconds"] for t in report["tenants"]), by_stack["tenant-slow"]["seconds"]
    assert report["wallSeconds"] <= total / 3 + longest + 0.5, (report["wallSeconds"], total)
    previews = [c["argv"] for c in calls if c["argv"][0] == "preview"]
    assert all("--policy-pack" in argv and str(directory / "policy") in argv for argv in previews)
    # The next run starts the slowest first, as the last report says: wall time near total / N.
    (tmp_path / "calls.jsonl").unlink()
    again, calls = fleet(tmp_path, directory, "preview", "--parallel", "3")
    assert again.returncode == 1
    first_call = {}  # each tenant's first CLI call
    for c in sorted((c for c in calls if c["argv"][0] in ("preview", "stack")), key=lambda c: c["started"]):
        first_call.setdefault(c["stack"], c["started"])
    first_wave = sorted(first_call, key=first_call.__getitem__)[:3]
    report = json.loads((directory / "fleet-preview.json").read_text())
    total = sum(t["seconds"] for t in report["tenants"])
    assert report["wallSeconds"] < total / 3 + 1.0, (report["wallSeconds"], total)
    assert "tenant-slow" in first_wave, first_call


def test_one_at_a_time_and_stack_glob(tmp_path):
    scenario = {"cust-a": {"seconds": 0.5}, "cust-b": {"seconds": 0.5}, "other": {"seconds": 0.5}}
    directory = project(tmp_path, scenario)
    done, calls = fleet(tmp_path, directory, "preview", "--parallel", "1", "--stacks", "cust-*")
    assert done.returncode == 0, done.stderr
    assert {c["stack"] for c in calls if c["argv"][0] == "preview"} == {"cust-a", "cust-b"}
    assert most_at_once(calls, "preview") == 1
    assert not any("--policy-pack" in c["argv"] for c in calls)  # this project has no policy/
    none, _ = fleet(tmp_path, directory, "preview", "--stacks", "nobody-*")
    assert none.returncode == 1 and "--stacks nobody-*: no Pulumi.<stack>.yaml" in none.stderr
    bad, _ = fleet(tmp_path, directory, "preview", "--parallel", "0")
    assert bad.returncode == 64 and "'0' is not a whole number of 1 or more" in bad.stderr  # never 2 (drift)


def test_up_reports_the_changes_it_made(clean_tenant, tmp_path):
    scenario = {"cust-a": {"changes": {"same": 8, "create": 1}}, "cust-b": {"changes": {"same": 9}}}
    directory = project(tmp_path, scenario)
    # cust-a names its tenant, as the README says each customer's stack does; cust-b runs as the environment's.
    (directory / "Pulumi.cust-a.yaml").write_text(json.dumps({"config": {
        **STACK_CONFIG, "azuread:tenantId": "aaaaaaaa-0000-4000-8000-000000000001"}}))
    done, calls = fleet(tmp_path, directory, "up", "--report", str(tmp_path / "up.json"),
                        env={**deployer_env(clean_tenant), "ARM_TENANT_ID": "partner-tenant"})
    assert done.returncode == 0, done.stderr
    # Each tenant's preflight read the tenant first, as that tenant's deployer: one $batch each.
    assert len([s for s in clean_tenant.directory.seen if s.path == "/v1.0/$batch"]) == 2
    report = json.loads((tmp_path / "up.json").read_text())
    assert [(t["stack"], t["result"], t["changes"]) for t in report["tenants"]] == [
        ("cust-a", "changes", {"create": 1}), ("cust-b", "ok", {})]
    ups = [c["argv"] for c in calls if c["argv"][0] == "up"]
    assert len(ups) == 2 and all("--yes" in argv and "--skip-preview" in argv for argv in ups)
    tenants = {c["stack"]: c["tenant"] for c in calls if c["argv"][0] == "up"}
    assert tenants == {"cust-a": "aaaaaaaa-0000-4000-8000-000000000001", "cust-b": "partner-tenant"}
    # PRESENCESYNC_STACKS picks the stacks, as the pipelines use it.
    done, calls = fleet(tmp_path, directory, "preview", env={"ARM_TENANT_ID": "x", "PRESENCESYNC_STACKS": "cust-a"})
    assert done.returncode == 0 and {c["stack"] for c in calls if c["argv"][0] == "preview"} == {"cust-a"}
    # Several globs, comma-separated (the Azure DevOps deploy stage passes the touched stacks so).
    (tmp_path / "calls.jsonl").unlink()
    done, calls = fleet(tmp_path, directory, "preview", "--stacks", "cust-b,nobody", env={"ARM_TENANT_ID": "x"})
    assert done.returncode == 0 and {c["stack"] for c in calls if c["argv"][0] == "preview"} == {"cust-b"}


def test_up_stops_a_tenant_whose_preflight_finds_a_refusal_and_goes_on(clean_tenant, tmp_path):
    d = clean_tenant.directory
    d.default_app_policy = default_app_management_policy(True, restriction("passwordLifetime", "P180D"))
    scenario = {"cust-a": {"changes": {"same": 8, "create": 1}}, "cust-b": {"changes": {"same": 9}}}
    directory = project(tmp_path, scenario)
    (directory / "Pulumi.cust-a.yaml").write_text(json.dumps({"config": {**STACK_CONFIG,
                                                                        "presencesync:secretExpiry": "2y"}}))
    (directory / "Pulumi.cust-b.yaml").write_text(json.dumps({"config": {**STACK_CONFIG,
                                                                        "presencesync:secretRotationDays": 60}}))
    done, calls = fleet(tmp_path, directory, "up", env=deployer_env(clean_tenant))
    assert done.returncode == 1
    report = {t["stack"]: t for t in json.loads((directory / "fleet-up.json").read_text())["tenants"]}
    assert report["cust-a"]["result"] == "failed" and report["cust-b"]["result"] == "ok"
    assert report["cust-a"]["details"][0].startswith("error: preflight: app management policy: ")
    assert [c["stack"] for c in calls if c["argv"][0] == "up"] == ["cust-b"]  # nothing created in cust-a
    assert d.writes() == []


def test_drift_finds_infrastructure_and_sign_in_drift_per_tenant(fake: FakeEntra, tmp_path):
    d = fake.directory
    d.add_resource_api(SKYPE_FOR_BUSINESS_ONLINE, SKYPE_SCOPES)
    d.add_resource_api(MICROSOFT_GRAPH, {"User.Read": "e1fe6dd8-ba31-4d61-89e7-88639da4683d"})
    user = User(UPN, PASSWORD)
    d.users[UPN] = user
    d.add_app(App(CLIENT_ID, {CLIENT_SECRET}, owners={user.id}))
    consent(fake)
    good = outputs(fake)
    stale = {**good, "novus": {**good["novus"], "clientSecret": "an-old-secret"}}
    scenario = {
        "clean": {"drift": {"same": 9}, "outputs": {**good, "previousClientSecretEndDate": "2028-05-30T00:00:00Z",
                                                    "nextSecretRotation": "2028-05-30T00:00:00Z"},
                  "secretOutputs": ["novus"]},
        "edited-in-portal": {"drift": {"same": 8, "update": 1}, "outputs": good, "secretOutputs": ["novus"]},
        "secret-revoked": {"drift": {"same": 9}, "outputs": stale, "secretOutputs": ["novus"]},
        "broken": {"fail": "error: getting secrets manager: passphrase must be set"},
    }
    directory = project(tmp_path, scenario)
    done, calls = fleet(tmp_path, directory, "drift", "--html", str(tmp_path / "page.html"), env=fake.env())
    assert done.returncode == 1, done.stderr  # a tenant failed outright; drift alone would exit 2
    report = {t["stack"]: t for t in json.loads((directory / "fleet-drift.json").read_text())["tenants"]}
    assert report["clean"]["result"] == "ok" and report["clean"]["details"] == []
    assert report["edited-in-portal"]["result"] == "drifted"
    assert report["edited-in-portal"]["changes"] == {"update": 1}
    assert report["edited-in-portal"]["details"] == ["pulumi preview --refresh: the tenant differs from the stack"]
    assert report["secret-revoked"]["result"] == "drifted"
    assert "AADSTS7000215" in report["secret-revoked"]["details"][0]
    assert report["broken"]["result"] == "failed"
    drifts = [c["argv"] for c in calls if c["argv"][0] == "preview"]
    assert all("--refresh" in argv and "--expect-no-changes" in argv for argv in drifts)
    # The report carries the secret dates the fleet page needs, and nothing secret; nor does the page.
    assert {k: report["clean"][k] for k in ("clientSecretEndDate", "previousClientSecretEndDate",
                                             "nextSecretRotation")} == {
        "clientSecretEndDate": "2028-11-26T00:00:00Z", "previousClientSecretEndDate": "2028-05-30T00:00:00Z",
        "nextSecretRotation": "2028-05-30T00:00:00Z"}
    page = (tmp_path / "page.html").read_text()
    assert "secret-revoked" in page and "2028-11-26" in page
    written = done.stdout + done.stderr + (directory / "fleet-drift.json").read_text() + page
    for secret in (CLIENT_SECRET, PASSWORD, "an-old-secret", *fake.directory.issued_tokens):
        assert secret not in written
    del scenario["broken"]
    (tmp_path / "scenario.json").write_text(json.dumps(scenario))
    (directory / "Pulumi.broken.yaml").unlink()
    assert fleet(tmp_path, directory, "drift", env=fake.env())[0].returncode == 2
