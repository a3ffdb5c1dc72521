"""`fleet` through the real Automation API against a stand-in `pulumi` on PATH (tests/standin/pulumi)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    PASSWORD,
    ROOT,
    SECURE,
    SKYPE_SCOPES,
    TENANT_ID,
    UPN,
    consent,
    deployer_env,
    outputs,
    run,
)
from fake_entra import App, FakeEntra, User
from fake_entra_policies import default_app_management_policy, restriction

from presencesync.permissions import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE

STANDIN = ROOT / "tests" / "standin"
STACK_CONFIG = {"azuread:tenantId": TENANT_ID, "presencesync:syncUser": {"userPrincipalName": UPN},
                "presencesync:syncUserPassword": SECURE, "presencesync:postDeployTimeout": 20}


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
    # Each stack names its tenant and runs there, whatever the environment's ARM_TENANT_ID says.
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
    assert tenants == {"cust-a": "aaaaaaaa-0000-4000-8000-000000000001", "cust-b": TENANT_ID}
    assert f"fleet: cust-b: ARM_TENANT_ID partner-tenant set aside: the stack runs in its own tenant {TENANT_ID}" \
        in done.stderr
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


# A provider's refusal, as pulumi-azuread (terraform-provider-azuread) words it when the deployer's
# credential is wrong; the `client_secret=` part stands for any credential a provider might echo.
AADSTS = ("sdk-v2/provider2.go:520: sdk.helper_schema: Adding password for application with object ID "
          "\"00000000-aaaa-4bbb-8ccc-000000000001\": unexpected status 401 (client_secret=Zx8Q~not-for-reports)\n"
          "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client "
          "secret value, not the client secret ID, for a secret added to app '11111111-2222-4333-8444-555555555555'.\n"
          "Trace ID: 0f1e2d3c Correlation ID: 4b5a6978 Timestamp: 2026-12-06 03:17:41Z")
SECRET_URN = ("urn:pulumi:cust-a::presencesync::presencesync:index:Tenant$azuread:index:ApplicationPassword"
              "::client-secret")


def test_a_failed_tenant_says_why_the_engine_failed_it(tmp_path, browser, clean_tenant):
    scenario = {"cust-a": {"changes": {"same": 7, "update": 1},
                           "resourceError": {"urn": SECRET_URN, "message": AADSTS, "op": "create"}},
                "cust-b": {"changes": {"same": 9},
                           "warning": {"urn": SECRET_URN.replace("cust-a", "cust-b"),
                                       "message": "post-deploy: the client secret changed: enter the new one on the "
                                                  "Novus page before 2027-03-03T00:00:00Z, when the one Novus has "
                                                  "stops working"}},
                "cust-c": {"policyViolation": {"urn": SECRET_URN.replace("cust-a", "cust-c").replace(
                    "ApplicationPassword::client-secret", "Application::application"),
                    "policy": "single-tenant-audience", "pack": "presencesync",
                    "message": "Only single-tenant applications.\nsignInAudience is AzureADMultipleOrgs"}}}
    directory = project(tmp_path, scenario)
    done, _ = fleet(tmp_path, directory, "up", "--html", str(tmp_path / "page.html"),
                    env={**deployer_env(clean_tenant), "ARM_TENANT_ID": "t"})  # its preflight reads a clean tenant
    assert done.returncode == 1, done.stderr
    tenants = {t["stack"]: t for t in json.loads((directory / "fleet-up.json").read_text())["tenants"]}
    cause, cli_line = tenants["cust-a"]["details"]
    # The resource as the CLI names it, the provider's message on one line, cut, no credential in it.
    assert cause.startswith("azuread:index:ApplicationPassword (client-secret): sdk.helper_schema: Adding password")
    assert "AADSTS7000215: Invalid client secret provided" in cause and "\n" not in cause
    assert len(cause) <= 300 and cause.endswith("…")
    assert "(client_secret=[redacted])" in cause
    assert "<{%" not in cause  # the engine's colour directives are gone
    assert cli_line == "pulumi exited 1: no message"  # a bail: the CLI prints nothing on stderr
    assert "AADSTS7000215" in done.stderr  # the progress line says it too
    # A mandatory policy's refusal is the cause in the same way.
    assert tenants["cust-c"]["details"] == [
        "azuread:index:Application (application) policy single-tenant-audience (presencesync): Only single-tenant "
        "applications. signInAudience is AzureADMultipleOrgs", "pulumi exited 1: no message"]
    # The notice of a new secret the post-deploy hook gave during up reaches the report.
    assert tenants["cust-b"]["notices"] == [
        "the client secret changed: enter the new one on the Novus page before 2027-03-03T00:00:00Z, when the one "
        "Novus has stops working"]
    written = done.stdout + done.stderr + (directory / "fleet-up.json").read_text() + (tmp_path / "page.html").read_text()
    assert "Zx8Q" not in written
    # On the page, as a browser shows it: the cause first, then the CLI's line; the notice beside cust-b.
    context = browser.new_context(offline=True)
    tab = context.new_page()
    tab.goto((tmp_path / "page.html").as_uri())
    row = tab.query_selector("tr[data-result=failed]")
    reasons = [li.inner_text() for li in row.query_selector_all("ul.reasons li")]
    assert reasons[0].startswith("azuread:index:ApplicationPassword (client-secret):")
    assert "AADSTS7000215: Invalid client secret provided" in reasons[0] and reasons[1] == cli_line
    notice = tab.query_selector("tr[data-result=ok] .notice")
    assert notice is not None and "enter the new one on the Novus page before 2027-03-03" in notice.inner_text()
    context.close()


def test_a_failed_check_keeps_the_drift_and_the_secret_dates(fake: FakeEntra, tmp_path, browser):
    d = fake.directory
    d.add_resource_api(SKYPE_FOR_BUSINESS_ONLINE, SKYPE_SCOPES)
    d.add_app(App(CLIENT_ID, {CLIENT_SECRET}))
    good = {**outputs(fake), "previousClientSecretEndDate": "2028-05-30T00:00:00Z",
            "nextSecretRotation": "2028-05-30T00:00:00Z"}
    scenario = {"hook-mode": {"drift": {"same": 8, "update": 1}, "outputs": good, "secretOutputs": ["novus"]}}
    directory = project(tmp_path, scenario)
    # consent: hook makes the check sign in as the deployer, which this environment cannot: the check raises.
    (directory / "Pulumi.hook-mode.yaml").write_text(json.dumps({"config": {
        **STACK_CONFIG, "presencesync:consent": "hook", "azuread:tenantId": d.tenant_id}}))
    done, _ = fleet(tmp_path, directory, "drift", "--html", str(tmp_path / "page.html"),
                    env={**fake.env(), "ARM_USE_OIDC": "true"})
    assert done.returncode == 1, done.stderr
    tenant = json.loads((directory / "fleet-drift.json").read_text())["tenants"][0]
    assert tenant["result"] == "failed"
    assert tenant["changes"] == {"update": 1}  # what the preview found
    assert tenant["details"] == ["ARM_USE_OIDC is set but ARM_CLIENT_ID is not; set ARM_CLIENT_ID",
                                 "pulumi preview --refresh: the tenant differs from the stack"]
    assert (tenant["clientSecretEndDate"], tenant["previousClientSecretEndDate"], tenant["nextSecretRotation"]) == (
        "2028-11-26T00:00:00Z", "2028-05-30T00:00:00Z", "2028-05-30T00:00:00Z")
    context = browser.new_context(offline=True)
    tab = context.new_page()
    tab.goto((tmp_path / "page.html").as_uri())
    cells = [td.inner_text() for td in tab.query_selector_all("tr[data-result=failed] td")]
    assert "update 1" in cells and "2028-11-26" in cells and "2028-05-30" in cells
    assert "ARM_USE_OIDC is set" in tab.inner_text("tr[data-result=failed]")
    context.close()


def test_drift_posts_to_teams_and_keeps_its_exit_code(tmp_path):
    from fake_teams import SIG, FakeTeams

    teams = FakeTeams(tmp_path)
    try:
        scenario = {"cust-a": {"drift": {"same": 8, "update": 1}, "outputs": {}},
                    "cust-b": {"drift": {"same": 9}, "outputs": {}}}
        directory = project(tmp_path, scenario)
        teams.script = [(503, {"Retry-After": "1"})] * 10
        done, _ = fleet(tmp_path, directory, "drift", "--teams-webhook-env", "PRESENCESYNC_TEAMS_WEBHOOK",
                        "--html", str(tmp_path / "page.html"),
                        env={**teams.env(), "ARM_TENANT_ID": "t", "PRESENCESYNC_TEAMS_DEADLINE": "2"})
        # cust-a drifted and cust-b's check failed (no outputs): 1, whether or not Teams took the message.
        assert done.returncode == 1, done.stderr
        assert teams.requests and "503 Service Unavailable after" in done.stderr
        assert "Teams notification failed" in (tmp_path / "page.html").read_text()
        teams.script = []
        done, _ = fleet(tmp_path, directory, "drift", "--teams-webhook-env", "PRESENCESYNC_TEAMS_WEBHOOK",
                        env={**teams.env(), "ARM_TENANT_ID": "t"})
        assert done.returncode == 1 and "teams: posted the fleet card" in done.stderr
        card = json.dumps(teams.requests[-1]["body"])
        assert "the stack has no 'novus' output" in card and "changes: update 1" in card
        assert SIG not in done.stdout + done.stderr
    finally:
        teams.close()
