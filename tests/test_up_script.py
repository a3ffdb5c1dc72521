"""scripts/up.sh and fleet find a Pulumi CLI new enough for the post-deploy hook, or install a pinned one.

The installer stand-in takes the arguments of Pulumi's official install.sh (`--no-edit-path
--install-root DIR --version X`, as pulumi.automation's PulumiCommand.install passes them) and, like
it, puts the CLI in DIR/bin. The CLI stand-in answers `version` as the real one does (`v3.272.0`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SECURE, deployer_env

from presencesync.fleet import MINIMUM_CLI

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def standin_cli(path: Path, version: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\necho "{path} $*" >> "$STANDIN_LOG"\n'
                    f'[ "$1" = version ] && echo "v{version}"\nexit 0\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def project(tmp_path: Path, clean_tenant) -> Path:
    """A copy of the project (with the real .venv) to run up.sh in; its preflight reads the loopback fake
    (a tenant that refuses nothing) as the deployer."""
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("Pulumi.yaml", "__main__.py", "requirements.txt", "requirements.lock"):
        shutil.copy(ROOT / name, copy / name)
    (copy / "Pulumi.dev.yaml").write_text(json.dumps({"config": {  # a stack of its own, whatever the repository has
        "azuread:tenantId": "f2a33a3e-2d9b-4d2e-9a55-3c0e1a7b8c9d",
        "presencesync:syncUser": {"userPrincipalName": "sync@contoso.com"},
        "presencesync:syncUserPassword": SECURE}}))
    for name in ("presencesync", "scripts"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / ".venv").symlink_to(Path(sys.prefix))
    installer = tmp_path / "install.sh"
    installer.write_text('#!/bin/sh\necho "install.sh $*" >> "$STANDIN_LOG"\n'
                         '[ -n "$STANDIN_INSTALL_FAILS" ] && exit 1\n'
                         'while [ $# -gt 0 ]; do case "$1" in --install-root) root=$2; shift;; '
                         '--version) version=$2; shift;; esac; shift; done\n'
                         f'{sys.executable} -c "import sys; sys.path.insert(0, {str(ROOT / "tests")!r}); '
                         'from test_up_script import standin_cli; from pathlib import Path; '
                         'standin_cli(Path(sys.argv[1]) / \'bin/pulumi\', sys.argv[2])" "$root" "$version"\n')
    installer.chmod(0o755)
    (copy / "deployer.env").write_text(json.dumps(deployer_env(clean_tenant)))
    return copy


def up(project: Path, path_dirs: list[Path], **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    log = project.parent / "calls.log"
    log.write_text("")
    done = subprocess.run(["bash", "scripts/up.sh", "dev"], cwd=project, capture_output=True, text=True, timeout=300,
                          check=False, stdin=subprocess.DEVNULL, env={
                              "PATH": ":".join([*map(str, path_dirs), SYSTEM_PATH]), "HOME": str(project.parent),
                              "STANDIN_LOG": str(log), "STANDIN_INSTALL_FAILS": "",
                              "PRESENCESYNC_PULUMI_INSTALLER": str(project.parent / "install.sh"),
                              **json.loads((project / "deployer.env").read_text()), **env})
    return done, [line.replace(str(project), "<project>") for line in log.read_text().splitlines()]


def test_without_a_cli_the_pinned_one_is_installed_into_the_project_and_used(project):
    done, calls = up(project, [])
    assert done.returncode == 0, done.stderr
    assert calls[0] == "install.sh --no-edit-path --install-root <project>/.pulumi --version 3.272.0"
    installed = "<project>/.pulumi/bin/pulumi"
    assert f"{installed} stack select --create dev" in calls and calls[-1] == f"{installed} up --stack dev"
    assert "installing Pulumi CLI 3.272.0 into" in done.stderr
    assert (Path(project.parent) / ".presencesync-state").is_dir()  # the local file backend
    # A second run uses what the first installed.
    done, calls = up(project, [])
    assert done.returncode == 0 and not any(c.startswith("install.sh") for c in calls)


def test_an_older_cli_on_path_is_not_used(project, tmp_path):
    old = standin_cli(tmp_path / "old/pulumi", "3.237.9")
    done, calls = up(project, [old.parent])
    assert done.returncode == 0, done.stderr
    assert f"{old} is Pulumi CLI '3.237.9', not 3.238.0 or newer" in done.stderr
    assert [c for c in calls if c.startswith(str(old))] == [f"{old} version"] * len(
        [c for c in calls if c.startswith(str(old))])
    assert calls[-1] == "<project>/.pulumi/bin/pulumi up --stack dev"


def test_a_new_enough_cli_on_path_is_used_as_it_is(project, tmp_path):
    cli = standin_cli(tmp_path / "new/pulumi", "3.238.0")
    done, calls = up(project, [cli.parent])
    assert done.returncode == 0, done.stderr
    assert not any(c.startswith("install.sh") for c in calls)
    assert calls[-1] == f"{cli} up --stack dev"
    assert "preflight: nothing in the tenant refuses stack dev" in done.stderr  # read before pulumi up


def test_a_tenant_that_would_refuse_stops_before_pulumi_up(project, clean_tenant):
    clean_tenant.directory.security_defaults = True
    done, calls = up(project, [])
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith("error: preflight: security defaults: security defaults are on")
    assert calls[-1] == "<project>/.pulumi/bin/pulumi stack output --json --stack dev"  # the preflight's last call
    assert not any(" up " in c for c in calls)


def test_a_failed_install_is_one_clear_line_after_the_offline_check(project):
    done, calls = up(project, [], STANDIN_INSTALL_FAILS="yes")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith("error: installing Pulumi CLI 3.272.0 failed; install 3.238.0 "
                                                  "or newer yourself")
    assert calls == ["install.sh --no-edit-path --install-root <project>/.pulumi --version 3.272.0"]


def test_a_bad_stack_stops_before_any_cli_is_looked_for(project):
    (project / "Pulumi.dev.yaml").write_text("config:\n  presencesync:consent: always\n")
    done, calls = up(project, [])
    assert done.returncode == 1 and calls == []
    assert "error: presencesync:syncUser: Stack 'dev' is missing configuration value 'syncUser'" in done.stderr


def test_the_cli_script_and_fleet_agree_on_the_minimum():
    script = (ROOT / "scripts/pulumi_cli.sh").read_text()
    assert re.search(r"^minimum=(\S+)", script, re.M).group(1) == ".".join(map(str, MINIMUM_CLI))


@pytest.mark.parametrize(("version", "message"), [
    (None, "error: no pulumi CLI on PATH; install Pulumi CLI 3.238.0 or newer"),
    ("3.200.0", "error: pulumi CLI 3.200.0 is too old: a failing post-deploy would not fail pulumi up; install"),
])
def test_fleet_fails_once_up_front_without_a_usable_cli(tmp_path, version, message):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if version:
        standin_cli(bin_dir / "pulumi", version)
    done = subprocess.run([sys.executable, "-m", "presencesync", "fleet", "preview", "--project-dir", str(ROOT)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PATH": f"{bin_dir}:{SYSTEM_PATH}", "STANDIN_LOG": os.devnull})
    assert done.returncode == 1
    assert done.stderr.splitlines() == [done.stderr.splitlines()[0]] and done.stderr.startswith(message)
