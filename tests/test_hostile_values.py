"""Stack values and server answers as an attacker would write them (issue 22): a value is configuration,
never a CI command, a shell word of its own, an az file read or a Graph query clause.

How the runners read commands (each finding below relies on it): the Azure Pipelines agent runs `##vso[`
found anywhere in a line of stdout or stderr (azure-pipelines-agent Command.cs, `TryParse`:
`message.IndexOf(LoggingCommandPrefix)`); GitHub Actions runs a line that starts with `::` and sets a
variable for every `NAME=value` line appended to $GITHUB_ENV, which is what `pipeline.py env` prints.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import unquote

import pytest
from conftest import ROOT, run, stack_config, write_stack

from presencesync.config import ConfigError, load_settings
from presencesync.errors import PresenceSyncError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
GUID = "11111111-2222-4333-8444-555555555555"
VSO = "##vso[task.setvariable variable=ARM_CLIENT_ID]00000000-0000-0000-0000-0000000000ff"
# Line breaks a runner or a terminal may honour: C0 (LF, CR, VT, FF), C1 (NEL) and Unicode's separators.
BREAKS = ["\n", "\r", "\v", "\f", "\x85", "\u2028", "\u2029"]


def command_lines(text: str) -> list[str]:
    """Lines of `text` that a CI runner would take as a command, split as liberally as any of them splits."""
    lines = text.replace("\r", "\n").replace("\x85", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    return [line for line in lines.splitlines() if "##vso[" in line or line.lstrip().startswith("::")]


def test_check_refuses_a_display_name_that_would_print_a_ci_command(tmp_path):
    for hostile in (f"PresenceSync\n{VSO}", "PresenceSync\r::add-mask::x", "PresenceSync\u2028::error::x",
                    f"PresenceSync {VSO}"):
        path = write_stack(tmp_path, {"presencesync:displayName": hostile,
                                      "presencesync:syncUser": {"userPrincipalName": "sync@contoso.com"},
                                      "presencesync:syncUserPassword": {"secure": "v1:x"}})
        done = run("check", "--config", str(path))
        assert done.returncode == 1, done.stdout  # on the old code: 0, the ##vso line in the resource list
        assert command_lines(done.stdout + done.stderr) == []
        assert any(line.startswith("error: presencesync:displayName: holds ") for line in done.stderr.splitlines())


@pytest.mark.parametrize("brk", BREAKS)
def test_every_string_value_with_a_control_character_is_refused_naming_the_key(brk):
    for key, value in [("displayName", f"a{brk}b"), ("redirectUris", [f"https://a.example/{brk}x"]),
                       ("syncUser", {"userPrincipalName": "sync@contoso.com", "usageLocation": f"D{brk}"}),
                       ("azuread:environment", f"public{brk}"), ("syncUserPassword", f"Secret-{brk}-Password")]:
        with pytest.raises(ConfigError) as refused:
            load_settings(stack_config(**{key: value}), now=NOW)
        name = key if ":" in key else f"presencesync:{key}"
        lines = [line for line in refused.value.problems if line.startswith(name)]
        assert len(lines) == 1, refused.value.problems  # one line per key: its own rule's where one fails
        if key in ("displayName", "redirectUris", "syncUserPassword"):  # no other rule of theirs refuses these
            assert "control characters" in lines[0], lines
        assert "Secret-" not in str(refused.value)  # the password is never quoted
        assert command_lines(str(refused.value)) == []


def test_a_key_with_a_line_break_is_refused_and_printed_on_one_line():
    with pytest.raises(ConfigError) as refused:
        load_settings({**stack_config(), f"presencesync:x\n{VSO}": "1"}, now=NOW)
    assert command_lines("\n".join(refused.value.problems)) == []
    assert any("the key holds control characters" in line for line in refused.value.problems)


@pytest.mark.parametrize("key", ["azuread:tenantId", "azuread:clientId"])
def test_tenant_and_client_ids_must_be_guids(key):
    for bad in (f"{GUID}\n", f"{GUID}\nBASH_ENV=$(id)", "contoso.onmicrosoft.com", f" {GUID}"):
        with pytest.raises(ConfigError) as refused:
            load_settings(stack_config(**{key: bad}), now=NOW)
        lines = [line for line in refused.value.problems if line.startswith(f"{key}: ")]
        assert len(lines) == 1 and "(GUID)" in lines[0] and command_lines(lines[0]) == []  # one line per key
    assert load_settings(stack_config(**{key: GUID}), now=NOW)


def test_anchored_patterns_refuse_a_trailing_newline():
    """`$` in Python matches before a final newline: every anchored pattern uses fullmatch."""
    for key, value in [("owners", [f"{GUID}\n"]), ("tenantDomain", "contoso.com\n"),
                       ("secretExpiry", "2027-06-30T00:00:00Z\n"),
                       ("syncUser", {"userPrincipalName": "sync@contoso.com\n"})]:
        with pytest.raises(ConfigError):
            load_settings(stack_config(**{key: value}), now=NOW)
    from presencesync import config_client_secrets, config_sync_users, config_values, go_yaml, policies, untrusted
    for pattern in (untrusted.GUID, config_values.DOMAIN, config_sync_users._UPN_LOCAL, config_client_secrets._RFC3339,
                    config_sync_users._COUNTRY,
                    go_yaml._FLOAT, go_yaml._TIMESTAMP, policies._DURATION):
        assert not pattern.pattern.endswith("$"), pattern.pattern
    assert go_yaml.resolve_plain("12\n") == "12\n"  # yaml.v3 (Go's regexp: $ is the end of text)


@pytest.fixture
def pipeline_copy(tmp_path: Path) -> Path:
    """scripts/pipeline.py in a project of its own (it reads the stack files beside its scripts/ directory)."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "pipeline.py").write_bytes((ROOT / "scripts" / "pipeline.py").read_bytes())
    (tmp_path / "presencesync").symlink_to(ROOT / "presencesync")
    return tmp_path


@pytest.mark.parametrize("key", ["azuread:tenantId", "azuread:clientId"])
def test_pipeline_env_prints_only_guids(pipeline_copy, key):
    other = "azuread:clientId" if key == "azuread:tenantId" else "azuread:tenantId"
    (pipeline_copy / "Pulumi.acme.yaml").write_text(json.dumps({"config": {
        key: f"{GUID}\nBASH_ENV=$(id>&2)", other: GUID}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARM_")}
    done = subprocess.run([sys.executable, "scripts/pipeline.py", "env", "acme"], cwd=pipeline_copy, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    # On the old code: exit 0 and a BASH_ENV= line, which $GITHUB_ENV turns into a variable of every later step.
    assert done.stdout == "" and done.returncode == 1
    assert key in done.stderr and "(GUID)" in done.stderr and command_lines(done.stderr) == []
    assert "Traceback" not in done.stderr


def test_pipeline_env_prints_the_pipelines_client_id_only_as_a_guid(pipeline_copy):
    (pipeline_copy / "Pulumi.acme.yaml").write_text(json.dumps({"config": {"azuread:tenantId": GUID}}))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ARM_")},
           "ARM_CLIENT_ID": f"{GUID}\n::add-mask::x\nBASH_ENV=$(id>&2)"}
    done = subprocess.run([sys.executable, "scripts/pipeline.py", "env", "acme"], cwd=pipeline_copy, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout == "" and done.returncode == 1  # before: ARM_CLIENT_ID=..., ::add-mask::x and BASH_ENV=
    assert "ARM_CLIENT_ID" in done.stderr and "(GUID)" in done.stderr and command_lines(done.stderr) == []


def test_check_prints_every_value_escaped():
    from presencesync.cli_check import _show

    shown = _show({"displayName": f"a\n{VSO}\r::x\u2028y\x85z\u200b", "list": [f"b\n{VSO}"]})
    assert command_lines(shown) == [] and len(shown.splitlines()) == 1
    assert "a\\n" in shown and "\\u2028" in shown and "\\u0085" in shown and "\\u200b" in shown


def test_messages_quote_values_on_one_line_without_ci_commands():
    with pytest.raises(ConfigError) as refused:
        load_settings(stack_config(signInAudience="x #\u200b#vso[task.complete]"), now=NOW)
    assert command_lines("\n".join(refused.value.problems)) == []
    assert "##vso[" not in "".join(refused.value.problems).replace("\u200b", "")


@pytest.mark.parametrize("value", ["@~/.git-credentials", "@/etc/passwd", "https://a.example/cb?x=@/etc/passwd",
                                   "=@secret.txt"])
def test_values_az_would_read_as_files_are_refused_with_the_reason(value):
    """The Azure CLI replaces an argument starting with @ (or whose part after the first = does) with a file's
    content; test_az_script runs the real CLI to show which arguments it expands."""
    key = "redirectUris" if value.startswith("https") else "displayName"
    with pytest.raises(ConfigError) as refused:
        load_settings(stack_config(**{key: [value] if key == "redirectUris" else value}), now=NOW)
    assert any(line.startswith(f"presencesync:{key}") and "the Azure CLI reads as the name of a local file" in line
               for line in refused.value.problems), refused.value.problems


def test_a_password_may_start_with_at_since_it_is_never_an_az_argument():
    assert load_settings(stack_config(syncUserPassword="@Sync=@Password1"), now=NOW)


def test_suggested_commands_quote_what_they_interpolate():
    from presencesync.adopt import import_command

    command = import_command("adopt.a b;id.json", "acme$(id)", True)
    assert shlex.split(command)[3:6] == ["adopt.a b;id.json", "--stack", "acme$(id)"]
    name = "owners.x';touch pwned;'"
    with pytest.raises(ConfigError) as refused:
        load_settings({**stack_config(), f"presencesync:{name}": "1"}, now=NOW)
    fix = next(p for p in refused.value.problems if "pulumi config set --path" in p)
    words = shlex.split(fix.split("pulumi config set --path ", 1)[1])
    assert words == [f"presencesync:{name}", "VALUE"]  # on the old code the quote ends early: a new command
    from presencesync.project_config import Declared, _how_to_set  # keys declared in a PR's Pulumi.yaml
    for kind, suffix in (("array", "[0]"), ("object", ".FIELD"), ("string", "")):
        fix = _how_to_set("presencesync:a;touch pwned", Declared(kind, None, None, False))
        assert shlex.split(fix.split("pulumi config set ", 1)[1])[-2:] == [f"presencesync:a;touch pwned{suffix}", "VALUE"]


def test_the_grants_filter_doubles_quotes_and_output_ids_must_be_guids():
    from presencesync.graph import admin_consent_grants
    from presencesync.stack_outputs import Deployed

    query = unquote(admin_consent_grants("x' or clientId ne 'y"))
    assert "clientId eq 'x'' or clientId ne ''y' and consentType eq 'AllPrincipals'" in query
    outputs = {"novus": {"tenantId": "contoso.com", "clientId": GUID, "clientSecret": "s", "userName": "u",
                         "password": "p"},
               "directoryTenantId": GUID, "applicationObjectId": GUID, "servicePrincipalObjectId": GUID,
               "clientSecretEndDate": "2027-01-01T00:00:00Z", "adminConsentUrl": "https://x"}
    assert Deployed.from_outputs(outputs).service_principal_object_id == GUID
    for key in ("servicePrincipalObjectId", "applicationObjectId", "directoryTenantId"):
        with pytest.raises(PresenceSyncError, match=f"{key} are not GUIDs"):
            Deployed.from_outputs({**outputs, key: f"{GUID}' or 1 eq 1 or id eq '"})
    with pytest.raises(PresenceSyncError, match=r"novus\.clientId are not GUIDs"):
        Deployed.from_outputs({**outputs, "novus": {**outputs["novus"], "clientId": "../users"}})


def test_the_preflight_takes_the_applications_object_id_from_the_outputs_only_as_a_guid():
    from presencesync.preflight import OwnApplication

    assert OwnApplication(True, GUID).object_id == GUID
    with pytest.raises(PresenceSyncError, match=r"applicationObjectId .* is not a GUID"):
        OwnApplication(True, f"{GUID}/owners/$ref?")


def test_preflight_lines_print_the_tenants_policy_names_escaped():
    from presencesync.preflight_findings import Finding

    line = Finding(True, "conditional access", f"policy 'MFA\n{VSO}\r::error::x' applies to the sync user").line()
    assert len(line.splitlines()) == 1 and command_lines(line) == []


def test_the_markdown_summary_keeps_each_tenant_on_its_row():
    from presencesync.fleet_page import markdown_summary

    report = {"action": "drift", "tenants": [{"stack": "acme", "result": "failed",
                                              "details": ["pulumi said\r| evil | row |\n::error::x"]}]}
    summary = markdown_summary(report, date(2026, 1, 1))
    assert "\r" not in summary and command_lines(summary) == []
    assert [line for line in summary.splitlines() if line.startswith("| acme")] == [
        "| acme | FAILED |  |  | pulumi said &#124; evil &#124; row &#124; ::error::x |"]


def test_the_az_script_keeps_its_quoting_for_a_sync_user_name_with_an_apostrophe(tmp_path):
    """An apostrophe is valid in a user principal name (o'brien@contoso.com) and the check lets it through.
    Inside a double-quoted `${VAR:?message}` bash takes a single quote in the message as opening a quoted
    string, so the rest of the script (the stack's own values in it too) would be read with its quoting
    shifted: the script must still parse, and the display name's `$(...)` must stay text."""
    stack = write_stack(tmp_path, {
        "presencesync:profile": "graph", "presencesync:displayName": "Novus $(touch pwned)",
        "presencesync:syncUser": {"userPrincipalName": "o'brien@contoso.com", "create": True,
                                  "usageLocation": "DK", "licensedElsewhere": True},
        "presencesync:syncUserPassword": {"secure": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}})
    done = run("manifest", "--config", str(stack), "--az-script")
    assert done.returncode == 0, done.stderr
    syntax = subprocess.run(["bash", "-n"], input=done.stdout, capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr
