"""scripts/up.sh and fleet find a Pulumi CLI new enough for the post-deploy hook, or install a pinned one.

The installer stand-in takes the arguments of Pulumi's official install.sh (`--no-edit-path
--install-root DIR --version X`, as pulumi.automation's PulumiCommand.install passes them) and, like
it, puts the CLI in DIR/bin. The CLI stand-in answers `version` as the real one does (`v3.272.0`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLE_STACK, SECURE, TENANT_ID, deployer_env, needs_example_stack

from presencesync.fleet import MINIMUM_CLI

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
STANDIN = ROOT / "tests" / "standin"
KEY_VAULT = "azurekeyvault://partner-kv.vault.azure.net/keys/pulumi"
MAKE_STACK = "--tenant-id <GUID> --profile ucwa|graph --sync-user <UPN>"


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
    venv_view(copy / ".venv")
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


def venv_view(venv: Path) -> None:
    """A .venv that is the tests' own environment (its interpreter, pyvenv.cfg and site-packages), with the
    project's `presencesync` command as pip's console script would run it; up.sh installs the project only
    where that command is missing, so nothing is installed into the shared environment."""
    (venv / "bin").mkdir(parents=True)
    shutil.copy(Path(sys.prefix) / "pyvenv.cfg", venv / "pyvenv.cfg")
    (venv / "lib").symlink_to(Path(sys.prefix) / "lib")
    for name in ("python", "pip"):
        (venv / "bin" / name).symlink_to(Path(sys.prefix) / "bin" / name)
    (venv / "bin" / "presencesync").write_text('#!/bin/sh\nexec "$(dirname "$0")/python" -m presencesync "$@"\n')
    (venv / "bin" / "presencesync").chmod(0o755)


def up_env(project: Path, path_dirs: list[Path], log: Path, **env: str) -> dict[str, str]:
    return {"PATH": ":".join([*map(str, path_dirs), SYSTEM_PATH]), "HOME": str(project.parent),
            "STANDIN_LOG": str(log), "STANDIN_INSTALL_FAILS": "",
            "PRESENCESYNC_PULUMI_INSTALLER": str(project.parent / "install.sh"),
            "FAKE_PULUMI_SCENARIO": str(project.parent / "scenario.json"),
            "FAKE_PULUMI_LOG": str(project.parent / "pulumi-calls.jsonl"),
            **json.loads((project / "deployer.env").read_text()), **env}


def up(project: Path, path_dirs: list[Path], *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    log = project.parent / "calls.log"
    log.write_text("")
    done = subprocess.run(["bash", "scripts/up.sh", *(args or ["dev"])], cwd=project, capture_output=True, text=True,
                          timeout=300, check=False, stdin=subprocess.DEVNULL, env=up_env(project, path_dirs, log, **env))
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


# The first commands on a fresh machine (issue 21): up.sh sets up .venv before it needs a stack, and takes a
# new stack (new-tenant's file, no password yet) through the CLI's stack creation and password prompt.

def test_without_a_stack_it_sets_up_the_venv_and_names_the_command_that_makes_one(project, tmp_path):
    """python3 and the new venv's pip are stand-ins that record their calls: the venv is real (`python3 -m venv
    --without-pip`), the packages, which pip would fetch from PyPI, are not installed."""
    shutil.rmtree(project / ".venv")
    bin_dir = tmp_path / "fresh-bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(
        '#!/bin/sh\necho "python3 $*" >> "$STANDIN_LOG"\n'
        f'{sys.executable} "$@" --without-pip || exit 1\n'
        'printf \'#!/bin/sh\\necho "pip $*" >> "$STANDIN_LOG"\\n\' > .venv/bin/pip && chmod +x .venv/bin/pip\n')
    (bin_dir / "python3").chmod(0o755)
    done, calls = up(project, [bin_dir], "")
    assert done.returncode == 64, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"up.sh: .venv is set up; next, make the tenant's stack: .venv/bin/presencesync new-tenant STACK {MAKE_STACK}"
        ", then bash scripts/up.sh STACK")
    assert calls == ["python3 -m venv .venv",
                     "pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock",
                     "pip install --quiet --disable-pip-version-check --no-deps -e ."]
    made = subprocess.run([str(project / ".venv/bin/python"), "-c", "import sys; print(sys.prefix)"],
                          capture_output=True, text=True, check=True)
    assert made.stdout.strip() == str(project / ".venv")


def test_a_stack_without_a_file_names_new_tenant(project):
    done, calls = up(project, [], "customer-a")
    assert done.returncode == 1 and calls == []
    assert done.stderr.splitlines() == [
        f"up.sh: there is no Pulumi.customer-a.yaml; make it with: .venv/bin/presencesync new-tenant customer-a "
        f"{MAKE_STACK}"]


@needs_example_stack
def test_the_example_stack_is_refused_with_the_command_that_makes_ones_own(project):
    shutil.copy(EXAMPLE_STACK, project / "Pulumi.dev.yaml")
    done, calls = up(project, [])
    assert done.returncode == 1 and calls == []
    assert done.stderr.splitlines() == [
        "up.sh: Pulumi.dev.yaml is the example stack (made-up tenant and owner): make your own with "
        f".venv/bin/presencesync new-tenant STACK {MAKE_STACK}, or set PRESENCESYNC_DEPLOY_EXAMPLE=1 to deploy the "
        "example"]


def new_stack(project: Path) -> None:
    """customer-a as a new user makes it, with the command up.sh names; the repository's other stack keeps its
    secrets in Key Vault. The stand-in CLI's backend has no stacks yet."""
    (project / "Pulumi.dev.yaml").write_text(f"secretsprovider: {KEY_VAULT}\nencryptedkey: a2V5\nconfig: {{}}\n")
    made = subprocess.run([".venv/bin/presencesync", "new-tenant", "customer-a", "--tenant-id", TENANT_ID,
                           "--profile", "ucwa", "--sync-user", "sync@contoso.com"], cwd=project, capture_output=True,
                          text=True, timeout=120, check=False, env={"PATH": SYSTEM_PATH, "HOME": str(project.parent)})
    assert made.returncode == 0, made.stderr
    assert ("new-tenant: or let scripts/up.sh run both (on a terminal), then the preflight and pulumi up: "
            "bash scripts/up.sh customer-a") in made.stdout.splitlines()
    (project.parent / "scenario.json").write_text("{}")


def pulumi_calls(project: Path) -> list[list[str]]:
    log = project.parent / "pulumi-calls.jsonl"
    return [json.loads(line)["argv"] for line in log.read_text().splitlines()] if log.exists() else []


def test_a_new_stack_without_a_terminal_stops_after_creating_it_with_the_password_command(project):
    new_stack(project)
    done, _ = up(project, [STANDIN, Path(sys.executable).parent], "customer-a")
    assert done.returncode == 1, done.stderr
    assert pulumi_calls(project)[-1] == ["stack", "select", "--create", "customer-a", "--secrets-provider", KEY_VAULT]
    assert not any(call[0] == "up" for call in pulumi_calls(project))
    assert done.stderr.splitlines()[-1] == (
        f"up.sh: no terminal to ask for the sync user's password; on one, run PULUMI_BACKEND_URL=file://"
        f"{project.parent}/.presencesync-state {STANDIN}/pulumi config set --secret presencesync:syncUserPassword "
        "--stack customer-a (it prompts), then bash scripts/up.sh customer-a")
    assert "error:" not in done.stderr  # the missing password is the next step, not a failure of check


def up_on_a_terminal(project: Path, stack: str, password: str) -> tuple[int, str, str]:
    """up.sh with a terminal (a pty) on stdin and stdout, as an admin runs it; `password` is typed at the
    CLI's prompt. Returns the exit code, what the terminal showed and stderr."""
    log = project.parent / "calls.log"
    log.write_text("")
    errors = project.parent / "stderr.txt"
    master, slave = os.openpty()
    with errors.open("w") as stderr:
        process = subprocess.Popen(["bash", "scripts/up.sh", stack], cwd=project, stdin=slave, stdout=slave,
                                   stderr=stderr, env=up_env(project, [STANDIN, Path(sys.executable).parent], log))
    os.close(slave)
    shown, typed = b"", False
    while select.select([master], [], [], 300)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: every process holding the terminal has ended
            break
        shown += chunk
        if not typed and shown.endswith(b"value: "):
            os.write(master, password.encode() + b"\n")
            typed = True
    os.close(master)
    return process.wait(timeout=300), shown.decode(errors="replace"), errors.read_text()


def test_a_new_stack_on_a_terminal_gets_its_password_from_the_cli_then_preflight_and_up(project):
    new_stack(project)
    password = "Typed-At-The-Prompt-7"
    code, shown, stderr = up_on_a_terminal(project, "customer-a", password)
    assert code == 0, stderr
    calls = pulumi_calls(project)
    assert calls[calls.index(["stack", "select", "--create", "customer-a", "--secrets-provider", KEY_VAULT]) + 1] == \
        ["config", "set", "--secret", "presencesync:syncUserPassword", "--stack", "customer-a"]
    assert calls[-2:] == [["stack", "output", "--json", "--stack", "customer-a"],  # the preflight's
                          ["up", "--stack", "customer-a"]]
    assert "preflight: nothing in the tenant refuses stack customer-a" in stderr
    # What the CLI was given is what was typed; it went to the CLI alone, never shown or written in clear.
    stack_file = (project / "Pulumi.customer-a.yaml").read_text()
    digest = base64.b64encode(hashlib.sha256(password.encode()).digest()).decode()
    assert re.search(rf"presencesync:syncUserPassword:\n    secure: v1:[^:\n]+:{re.escape(digest)}\n", stack_file)
    assert password not in shown + stderr + stack_file


def test_check_tells_a_stack_lacking_only_its_password_from_one_with_other_problems(tmp_path):
    """Exit 3 is what up.sh goes on past; the same rule as new-tenant's (new_tenant.besides_password)."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    base = {"azuread:tenantId": TENANT_ID, "presencesync:syncUser": {"userPrincipalName": "sync@contoso.com"}}
    (tmp_path / "Pulumi.new.yaml").write_text(json.dumps({"config": base}))
    (tmp_path / "Pulumi.bad.yaml").write_text(json.dumps({"config": {**base, "presencesync:consent": "always"}}))
    (tmp_path / "Pulumi.other.yaml").write_text(json.dumps({"secretsprovider": KEY_VAULT, "config": {}}))

    def presencesync(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "presencesync", *args, "--project-dir", str(tmp_path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False)

    done = presencesync("check", "--stack", "new")
    assert done.returncode == 3 and done.stderr.startswith("error: presencesync:syncUserPassword: Stack 'new' is "
                                                           "missing configuration value 'syncUserPassword'")
    done = presencesync("check", "--stack", "bad")
    assert done.returncode == 1 and "error: presencesync:consent: 'always' is not one of" in done.stderr
    # A password that is there but unusable is an error, not a stack waiting for its password.
    (tmp_path / "Pulumi.plain.yaml").write_text(json.dumps({"config": {**base, "presencesync:syncUserPassword": "x"}}))
    done = presencesync("check", "--stack", "plain")
    assert done.returncode == 1 and "error: presencesync:syncUserPassword: must be encrypted" in done.stderr
    done = presencesync("check", "--stack", "*")  # a glob's verdict stays pass or fail
    assert done.returncode == 1
    assert presencesync("secrets-provider", "--stack", "new").stdout == f"{KEY_VAULT}\n"
    assert presencesync("secrets-provider", "--stack", "other").stdout == ""  # the others use the default
