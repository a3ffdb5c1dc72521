"""Files a pull request or a local user could point presencesync at (issue 22, Low): a YAML alias bomb, a
stack file that is a symbolic link to /dev/zero or out of the project, a hand-over path that is a link.

The commands run in a subprocess with a memory limit and a timeout, so that the old code (which read
/dev/zero for ever and expanded the bomb past 1.8 GB) fails the test instead of the machine. The target is
a refusal within a second; the bound asserted here is generous for a loaded machine.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT, UPN

from presencesync.errors import PresenceSyncError

BOUND_SECONDS = 10  # the target is one second; the bound leaves room for a machine shared by many jobs
MEMORY_LIMIT = 1 << 30


def alias_bomb() -> str:
    """A billion laughs: nine levels of nine aliases of the level below (9^9 strings once expanded)."""
    lines = ["config:", '  presencesync:a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level, below in zip("bcdefghi", "abcdefgh", strict=True):
        lines.append(f"  presencesync:{level}: &{level} [" + ",".join([f"*{below}"] * 9) + "]")
    lines.append("  presencesync:displayName: &name PresenceSync of Contoso Ltd, the presence provider")
    return "\n".join(lines) + "\n"


def timed_check(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARM_", "PRESENCESYNC_"))}
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "presencesync", "check", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60, check=False, preexec_fn=limit_memory)
    except subprocess.TimeoutExpired:
        pytest.fail("check ran for more than 60 s")
    return done, time.monotonic() - started


def test_an_alias_bomb_is_refused_within_a_second(tmp_path):
    bomb = tmp_path / "Pulumi.bomb.yaml"
    bomb.write_text(alias_bomb())
    assert len(bomb.read_bytes()) < 600  # the is 580 bytes
    done, seconds = timed_check("--config", str(bomb))
    assert done.returncode == 1 and seconds < BOUND_SECONDS, (seconds, done.stderr[-500:])
    assert "document contains excessive aliasing" in done.stderr and "Traceback" not in done.stderr


def test_deep_nesting_is_one_line_not_a_bug(tmp_path):
    deep = tmp_path / "Pulumi.deep.yaml"
    deep.write_text("config:\n  presencesync:x: " + "[" * 5000 + "]" * 5000 + "\n")
    done, seconds = timed_check("--config", str(deep))
    assert done.returncode == 1 and seconds < BOUND_SECONDS
    assert "nests values too deeply to be read" in done.stderr and "a bug" not in done.stderr


def test_aliases_within_yaml_v3s_ratio_still_read():
    """A few aliases (a list reused once or twice) are what people write; yaml.v3 reads them."""
    from presencesync.go_yaml import allowed_alias_ratio, parse_yaml

    text = "a: &x [1, 2, 3]\nb: *x\nc: {k: *x}\n" + "".join(f"k{i}: v{i}\n" for i in range(2000))
    assert parse_yaml(text)["c"] == {"k": [1, 2, 3]}
    assert allowed_alias_ratio(1000) == 0.99 and allowed_alias_ratio(4_000_000) == 0.10
    assert abs(allowed_alias_ratio(2_200_000) - 0.545) < 1e-9  # halfway: 0.99 - 0.89 / 2


@pytest.mark.parametrize(("target", "why"), [("/dev/zero", "is a symbolic link to /dev/zero, outside the project"),
                                             ("/etc/hostname", "outside the project directory")])
def test_a_stack_file_linked_out_of_the_project_is_refused(tmp_path, target, why):
    if not Path(target).exists():
        pytest.skip(f"{target} does not exist here")
    (tmp_path / "Pulumi.yaml").write_bytes((ROOT / "Pulumi.yaml").read_bytes())
    (tmp_path / "Pulumi.z.yaml").symlink_to(target)
    done, seconds = timed_check("--stack", "z", "--project-dir", str(tmp_path))
    assert done.returncode == 1 and seconds < BOUND_SECONDS, (seconds, done.stderr[-500:])
    assert why in done.stderr and "Traceback" not in done.stderr


def test_a_stack_file_that_is_a_device_or_too_big_is_refused(tmp_path):
    from presencesync.stack_file import MAX_STACK_FILE_BYTES, read_stack_config

    inside = tmp_path / "stacks"
    inside.mkdir()
    os.mkfifo(inside / "pipe.yaml")
    (tmp_path / "Pulumi.pipe.yaml").symlink_to(inside / "pipe.yaml")  # inside the project, but a FIFO
    with pytest.raises(PresenceSyncError, match="is not a regular file"):
        read_stack_config(tmp_path / "Pulumi.pipe.yaml")
    (tmp_path / "Pulumi.big.yaml").write_text("config:\n" + "#" * MAX_STACK_FILE_BYTES + "\n")
    with pytest.raises(PresenceSyncError, match="is larger than"):
        read_stack_config(tmp_path / "Pulumi.big.yaml")
    (inside / "real.yaml").write_text(json.dumps({"config": {"presencesync:displayName": "Linked"}}))
    (tmp_path / "Pulumi.linked.yaml").symlink_to(inside / "real.yaml")  # a link within the project is fine
    assert read_stack_config(tmp_path / "Pulumi.linked.yaml").values["presencesync:displayName"] == "Linked"


def deployed():
    from presencesync.stack_outputs import Deployed

    guid = "11111111-2222-4333-8444-555555555555"
    return Deployed.from_outputs({
        "novus": {"tenantId": "contoso.com", "clientId": guid, "clientSecret": "the-client-secret",
                  "userName": UPN, "password": "the-password"},
        "directoryTenantId": guid, "applicationObjectId": guid, "servicePrincipalObjectId": guid,
        "clientSecretEndDate": "2027-01-01T00:00:00Z", "adminConsentUrl": "https://x"})


def test_the_handover_file_is_never_written_through_a_link(tmp_path):
    from presencesync.handover import secret_change_notice, write_handover

    victim = tmp_path / "authorized_keys"
    victim.write_text("ssh-ed25519 AAAA admin\n")
    link = tmp_path / "novus-config.t.json"
    link.symlink_to(victim)
    with pytest.raises(PresenceSyncError, match="is a symbolic link"):
        write_handover(link, deployed())  # the old code followed the link and replaced the victim's content
    assert victim.read_text() == "ssh-ed25519 AAAA admin\n"
    assert secret_change_notice(link, deployed()) is None
    plain = tmp_path / "novus.json"
    plain.write_text("old and longer than the new content " * 20)
    plain.chmod(0o644)
    write_handover(plain, deployed())
    assert json.loads(plain.read_text())["clientSecret"] == "the-client-secret"
    assert plain.stat().st_mode & 0o777 == 0o600


def test_the_handover_path_refuses_a_pipe_without_blocking(tmp_path):
    from presencesync.handover import write_handover

    pipe = tmp_path / "novus.json"
    os.mkfifo(pipe)
    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            write_handover(pipe, deployed())
            outcome.append(None)
        except BaseException as error:  # handed over to the test
            outcome.append(error)

    worker = threading.Thread(target=write, daemon=True)  # the old code blocks for ever opening the pipe
    worker.start()
    worker.join(BOUND_SECONDS)
    assert outcome, "writing the hand-over file blocked on a pipe"
    assert isinstance(outcome[0], PresenceSyncError) and "not a regular file" in str(outcome[0])


def test_new_tenant_skips_a_sibling_stack_file_linked_to_dev_zero(tmp_path):
    """new-tenant reads the other stack files for their secrets provider: a link to /dev/zero among them is
    passed over at once, not read until memory runs out."""
    (tmp_path / "Pulumi.a.yaml").write_text("secretsprovider: azurekeyvault://kv.vault.azure.net/keys/k\nconfig: {}\n")
    (tmp_path / "Pulumi.z.yaml").symlink_to("/dev/zero")
    code = ("import sys; from pathlib import Path; from presencesync.new_tenant import secrets_provider; "
            "print(secrets_provider(Path(sys.argv[1]), 'new'))")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT)))
    assert time.monotonic() - started < BOUND_SECONDS and done.returncode == 0, done.stderr[-300:]
    assert done.stdout.strip() == "azurekeyvault://kv.vault.azure.net/keys/k"
