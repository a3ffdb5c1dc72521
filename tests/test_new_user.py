"""What a new user tripped on (issue 21, part 4), each as the user met it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, SECURE, TENANT_ID, needs_example_stack, run, write_stack


def base(**extra) -> dict:
    return {"presencesync:syncUser": {"userPrincipalName": "sync@contoso.com"},
            "presencesync:syncUserPassword": SECURE, **extra}


def test_the_project_installs_with_a_presencesync_command(tmp_path):
    """pip builds the project from pyproject.toml (its pinned setuptools, fetched from PyPI) and makes the
    console script; run from another directory, it finds the package where pip put it."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "requirements.txt"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "presencesync", source / "presencesync", ignore=shutil.ignore_patterns("__pycache__"))
    prefix = tmp_path / "prefix"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           "--no-deps", "--prefix", str(prefix), str(source)],
                          capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0 and "No matching distribution" in done.stderr + done.stdout:
        pytest.skip("PyPI is not reachable for the build backend")
    assert done.returncode == 0, done.stderr
    site = next(prefix.glob("lib/python*/site-packages"))
    assert (site / "presencesync" / "templates" / "fleet_page.html").is_file()  # the page template comes along
    elsewhere = subprocess.run([str(prefix / "bin" / "presencesync"), "new-tenant", "--help"], cwd=tmp_path,
                               env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True,
                               timeout=120, check=False)
    assert elsewhere.returncode == 0 and "--tenant-id GUID" in elsewhere.stdout, elsewhere.stderr


def test_a_missing_dependency_is_one_line_saying_how_to_set_up(tmp_path):
    # Without site-packages (python -S), as outside the virtual environment: PyYAML is missing at start.
    done = subprocess.run([sys.executable, "-S", "-m", "presencesync", "check", "--stack", "dev"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "error: the Python package yaml is not installed: run presencesync from the project's virtual environment "
        "(.venv/bin/presencesync or .venv/bin/python -m presencesync); set it up with: bash scripts/up.sh STACK, or "
        "python3 -m venv .venv && .venv/bin/pip install --require-hashes -r requirements.lock && .venv/bin/pip "
        "install --no-deps -e ."]
    # A dependency missing only where a command needs it (the grpc, which the Pulumi SDK imports).
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "grpc.py").write_text("raise ModuleNotFoundError(\"No module named 'grpc'\", name='grpc')\n")
    done = run("check", "--config", str(write_stack(tmp_path, base())), env={"PYTHONPATH": str(shadow)})
    assert done.returncode == 1 and done.stderr.startswith("error: the Python package grpc is not installed"), \
        done.stderr
    assert "a bug in presencesync" not in done.stderr


@needs_example_stack
def test_a_closed_pipe_is_no_bug():
    """`check ... | head`: the reader is gone before check writes (Python ignores SIGPIPE, so the write fails
    with BrokenPipeError)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ARM_", "PRESENCESYNC_"))}
    process = subprocess.Popen([sys.executable, "-m", "presencesync", "check", "--stack", "dev"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert stderr == ""


def test_manifest_writes_its_file_only_on_success(tmp_path):
    """ucwa's Skype scope IDs must be read from the tenant: without credentials nothing is written."""
    script = tmp_path / "setup.sh"
    done = run("manifest", "--config", str(write_stack(tmp_path, base())), "--az-script", "--output", str(script))
    assert done.returncode == 1 and "are not published and must be read from the tenant" in done.stderr
    assert not script.exists() and list(tmp_path.glob(".setup.sh*")) == []
    # graph's IDs are all published: the file is written, owner-only.
    manifest = tmp_path / "requiredResourceAccess.json"
    done = run("manifest", "--profile", "graph", "--output", str(manifest))
    assert done.returncode == 0, done.stderr
    assert json.loads(manifest.read_text())[0]["resourceAppId"] == "00000003-0000-0000-c000-000000000000"
    assert manifest.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(("value", "word"), [("yes", "true"), ("on", "true"), ("no", "false"), ("Off", "false")])
def test_a_yaml_1_1_boolean_says_write_true_or_false(tmp_path, value, word):
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text(f"config:\n  azuread:tenantId: {TENANT_ID}\n  presencesync:protect: {value}\n"
                    "  presencesync:syncUser: {userPrincipalName: sync@contoso.com}\n"
                    f"  presencesync:syncUserPassword: {{secure: {SECURE['secure']}}}\n")
    done = run("check", "--config", str(path))
    assert done.returncode == 1
    assert (f"error: presencesync:protect: must be of type 'boolean' ('{value}'), or the Pulumi CLI refuses the "
            f"stack; write {word}: Pulumi reads stack files as YAML 1.2, where '{value}' is text") in done.stderr


def test_a_misspelt_policy_pack_config_key_is_an_error(tmp_path):
    stack = str(write_stack(tmp_path, base()))
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({"single-tenant-audience": {"allowMultitenant": True}}))
    done = run("check", "--config", stack, "--policy-pack-config", str(config))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: --policy-pack-config {config}: single-tenant-audience: 'allowMultitenant' is not one of its "
        "settings (allowMultiTenant, enforcementLevel); did you mean 'allowMultiTenant'?"]
    config.write_text(json.dumps({"single-tenant-audiense": {"allowMultiTenant": True}}))
    done = run("check", "--config", stack, "--policy-pack-config", str(config))
    assert "'single-tenant-audiense' is no policy of the pack (did you mean 'single-tenant-audience'?)" in done.stderr
    config.write_text(json.dumps({"single-tenant-audience": {"allowMultiTenant": True, "enforcementLevel": "advisory"}}))
    assert run("check", "--config", stack, "--policy-pack-config", str(config)).returncode == 0


def test_fleet_report_writes_a_summary_without_a_page(tmp_path):
    from presencesync.fleet import TenantRun, write_report

    report = tmp_path / "fleet-drift.json"
    write_report(report, "drift", 1, [TenantRun("customer-a", "ok")], 1.0)
    summary = tmp_path / "summary.md"
    done = run("fleet", "report", str(report), "--summary", str(summary))
    assert done.returncode == 0, done.stderr
    assert "customer-a" in summary.read_text() and not list(tmp_path.glob("*.html"))
    done = run("fleet", "report", str(report))
    assert done.returncode == 1 and "nothing to write; give --html FILE, --summary FILE or both" in done.stderr


def test_check_takes_a_glob_of_stacks(tmp_path):
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    for name, config in (("customer-a", base()), ("customer-b", base(**{"presencesync:consent": "always"})),
                         ("other", base())):
        (tmp_path / f"Pulumi.{name}.yaml").write_text(json.dumps({"config": {"azuread:tenantId": TENANT_ID, **config}}))
    done = run("check", "--stack", "customer-*", "--project-dir", str(tmp_path))
    assert done.returncode == 1
    assert [line for line in done.stdout.splitlines() if line.startswith("== ")] == ["== customer-a", "== customer-b"]
    assert "error: customer-b: presencesync:consent: 'always' is not one of" in done.stderr
    assert "check: 1 of 2 stack(s) pass; failing: customer-b" in done.stderr
    done = run("check", "--stack", "nobody-*", "--project-dir", str(tmp_path))
    assert done.returncode == 1 and "no Pulumi.<stack>.yaml in" in done.stderr


def test_every_file_the_readme_has_commands_write_is_git_ignored():
    readme = (ROOT / "README.md").read_text()
    written = set(re.findall(r"--(?:html|report|summary) ([\w.-]+\.(?:html|json))", readme))
    assert "fleet-health.html" in written
    done = subprocess.run(["git", "check-ignore", "--no-index", *sorted(written)], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert sorted(done.stdout.split()) == sorted(written)
