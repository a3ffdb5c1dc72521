"""The GitOps pipelines: GitHub Actions workflows and the Azure DevOps pipeline, read as YAML and
checked for their triggers, permissions, jobs and commands; and the helper script they call."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
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
    assert "secrets." not in text and "CLIENT_SECRET" not in text  # no stored client secret


def test_pull_request_checks_previews_with_policy_and_comments():
    document = workflow("preview.yml")
    assert document["on"] == {"pull_request": {"branches": ["main"]}}
    assert document["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    assert "scripts/pipeline.py changed origin/${{ github.base_ref }}" in runs(document["jobs"]["stacks"])
    job = document["jobs"]["preview"]
    assert_per_stack_matrix(job)
    assert_oidc_sign_in(document, job)
    assert 'python -m presencesync check --stack "${{ matrix.stack }}"' in runs(job)
    action = pulumi_step(job)
    assert (action["command"], action["comment-on-pr"], action["policyPacks"]) == ("preview", True, "policy")
    assert action["cloud-url"].startswith("azblob://")


def test_merge_deploys_changed_stacks_then_checks_post_deploy():
    document = workflow("deploy.yml")
    assert document["on"] == {"push": {"branches": ["main"]}}
    assert "pull-requests" not in document["permissions"]
    assert "scripts/pipeline.py changed ${{ github.event.before }}" in runs(document["jobs"]["stacks"])
    job = document["jobs"]["up"]
    assert_per_stack_matrix(job)
    assert_oidc_sign_in(document, job)
    assert job["environment"] == "tenants"
    action = pulumi_step(job)
    assert (action["command"], action["policyPacks"]) == ("up", "policy")
    names = [s.get("uses", s.get("name")) for s in steps(job)]
    assert names.index("post-deploy check") > names.index("pulumi/actions@v7")
    assert 'python -m presencesync post-deploy --stack "${{ matrix.stack }}" --check' in runs(job)
    cleanup = steps(job)[-1]
    assert cleanup["if"] == "always()" and cleanup["run"] == "rm -f novus-config.*.json"


def test_nightly_drift_is_one_job_per_stack():
    document = workflow("drift.yml")
    assert document["on"]["schedule"][0]["cron"] == "17 3 * * *" and "workflow_dispatch" in document["on"]
    assert "scripts/pipeline.py all" in runs(document["jobs"]["stacks"])
    job = document["jobs"]["drift"]
    assert_per_stack_matrix(job)
    assert_oidc_sign_in(document, job)
    action = pulumi_step(job)
    assert (action["command"], action["refresh"], action["expect-no-changes"]) == ("preview", True, True)
    check = next(s for s in steps(job) if s.get("name") == "post-deploy check")
    assert check["if"] == "always()"  # infrastructure drift does not hide sign-in drift
    assert '--stack "${{ matrix.stack }}" --check' in check["run"]


def test_azure_devops_has_the_same_three_stages_with_the_pulumi_task():
    pipeline = yaml.safe_load((ROOT / "azure-pipelines.yml").read_text())
    stages = {stage["stage"]: stage for stage in pipeline["stages"]}
    assert list(stages) == ["preview", "deploy", "drift"]
    assert "PullRequest" in stages["preview"]["condition"]
    assert "refs/heads/main" in stages["deploy"]["condition"] and "IndividualCI" in stages["deploy"]["condition"]
    assert "Schedule" in stages["drift"]["condition"] and pipeline["schedules"][0]["always"] is True
    parameters = {
        "preview": ("preview", "--policy-pack policy"), "deploy": ("up", "--yes --policy-pack policy"),
        "drift": ("preview", "--refresh --expect-no-changes")}
    for name, (command, args) in parameters.items():
        jobs = stages[name]["jobs"]
        run_job = jobs[1]
        job_steps = run_job["strategy"]["runOnce"]["deploy"]["steps"] if "deployment" in run_job else run_job["steps"]
        template = next(s for s in job_steps if "template" in s)
        assert template["template"] == ".azure-pipelines/stack-steps.yml"
        assert (template["parameters"]["command"], template["parameters"]["args"]) == (command, args)
    template = yaml.safe_load((ROOT / ".azure-pipelines" / "stack-steps.yml").read_text())
    tasks = [s.get("task") for s in template["steps"]]
    assert "Pulumi@1" in tasks and "AzureCLI@2" in tasks
    pulumi_task = next(s for s in template["steps"] if s.get("task") == "Pulumi@1")
    assert pulumi_task["inputs"]["stack"] == "$(STACK)" and pulumi_task["env"]["ARM_USE_OIDC"] == "true"
    assert "secrets." not in (ROOT / "azure-pipelines.yml").read_text() + yaml.safe_dump(template)


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


def test_deployer_env_comes_from_the_stack_or_the_pipeline(pipeline_script, tmp_path):
    deployer_env = pipeline_script["deployer_env"]
    (tmp_path / "Pulumi.customer-a.yaml").write_text(json.dumps({"config": {
        "azuread:tenantId": "11111111-2222-4333-8444-555555555555"}}))
    assert deployer_env("customer-a", tmp_path, {"ARM_CLIENT_ID": "app"}) == [
        "ARM_TENANT_ID=11111111-2222-4333-8444-555555555555", "ARM_CLIENT_ID=app"]
    with pytest.raises(SystemExit, match="sets no azuread:tenantId"):
        deployer_env("customer-a", tmp_path, {})


def test_the_script_as_the_pipelines_run_it():
    def script(*args: str) -> str:
        return subprocess.run([sys.executable, "scripts/pipeline.py", *args], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
    assert json.loads(script("all")) == ["dev"]
    assert json.loads(script("all", "customer-*")) == []
    assert json.loads(script("changed", "HEAD")) == []
    assert json.loads(script("ado-matrix", '["a", "b"]')) == {"a": {"STACK": "a"}, "b": {"STACK": "b"}}
