"""The Pulumi CLI's config gate and its YAML reading, modelled from the CLI's source.

Rules: pkg/workspace/config.go (`mergeConfig`: required keys and defaults; `validateStackConfigValues`
and `validateStackConfigValue`: secret and type checks), sdk/go/common/workspace/project.go
(`ValidateConfigValue`), sdk/go/common/workspace/loaders.go (`LoadProjectStackBytes`: keys without a
namespace are the project's), sdk/go/common/resource/config/object.go (`unmarshalObject`,
`MarshalString`: how values reach the program) and gopkg.in/yaml.v3 resolve.go (`resolve`,
`allowedTimestampFormats`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from presencesync.config import load_settings
from presencesync.project_config import Declared, Project, apply_gate, load_project
from presencesync.stack_file import StackFileError, read_stack_config

ROOT = Path(__file__).resolve().parent.parent
ENCRYPTED = {"secure": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}  # as the service secrets manager writes it


def gate(tmp_path: Path, config: dict, name: str = "customer-a", text: str | None = None):
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(text if text is not None else json.dumps({"config": config}))
    stack = read_stack_config(path)
    return apply_gate(load_project(), name, stack), stack


def minimal(**extra) -> dict:
    return {"azuread:tenantId": "f2a33a3e-2d9b-4d2e-9a55-3c0e1a7b8c9d",
            "presencesync:syncUser": {"userPrincipalName": "sync@contoso.com"},
            "presencesync:syncUserPassword": ENCRYPTED, **extra}


@pytest.mark.parametrize("stack_file", sorted(ROOT.glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_every_stack_file_in_the_repository_passes_the_gate(stack_file):
    stack = read_stack_config(stack_file)
    _, refused = apply_gate(load_project(), stack_file.stem.removeprefix("Pulumi."), stack)
    assert refused == [] and stack.problems == ()


@pytest.mark.parametrize("extra", [
    {}, {"presencesync:profile": "graph"}, {"presencesync:secretRotationDays": 180},
    {"presencesync:profile": "graph", "presencesync:secretRotationDays": 90, "presencesync:consent": "hook"},
], ids=["ucwa", "graph", "ucwa-rotation", "graph-rotation-hook"])
def test_a_stack_with_only_its_tenant_the_sync_user_and_its_password_passes_and_runs(tmp_path, extra):
    from datetime import UTC, datetime

    (values, refused), stack = gate(tmp_path, minimal(**extra))
    assert refused == []
    # What the program then receives: the declared defaults, as the CLI hands them over.
    assert values["presencesync:secretExpiry"] == "" and values["presencesync:implicitGrant"] == "{}"
    assert values["presencesync:postDeployTimeout"] == "300" and values["presencesync:protect"] == "false"
    settings = load_settings(values, now=datetime.now(UTC), encrypted=stack.encrypted)
    assert (settings.secret_rotation_days is None) == ("presencesync:secretRotationDays" not in extra)


def test_the_gate_refuses_what_the_cli_refuses_one_line_each(tmp_path):
    (_, refused), _ = gate(tmp_path, {"presencesync:syncUserPassword": "plain-text-password",
                                      "presencesync:postDeployTimeout": "soon", "presencesync:protect": "yes",
                                      "presencesync:owners": "not-a-list", "presencesync:redirectUris": [1]})
    assert refused == [
        "presencesync:owners: must be of type 'array<string>' ('not-a-list'), or the Pulumi CLI refuses the stack; "
        "set it as a YAML list in the stack file, or with pulumi config set --path 'presencesync:owners[0]' VALUE",
        "presencesync:postDeployTimeout: must be of type 'integer' ('soon'), or the Pulumi CLI refuses the stack; "
        "set it in the stack file, or with pulumi config set presencesync:postDeployTimeout VALUE",
        "presencesync:protect: must be of type 'boolean' ('yes'), or the Pulumi CLI refuses the stack; "
        "write true: Pulumi reads stack files as YAML 1.2, where 'yes' is text",
        "presencesync:redirectUris: must be of type 'array<string>' ('[1]'), or the Pulumi CLI refuses the stack; "
        "set it as a YAML list in the stack file, or with pulumi config set --path 'presencesync:redirectUris[0]' VALUE",
        "presencesync:syncUser: Stack 'customer-a' is missing configuration value 'syncUser', so the Pulumi CLI "
        "refuses to run it; set it as a YAML map in the stack file, or with pulumi config set --path "
        "presencesync:syncUser.FIELD VALUE",
        "presencesync:syncUserPassword: must be encrypted, and is in plain text in the stack file; remove it from "
        "the file and set it with pulumi config set --secret presencesync:syncUserPassword",
    ]
    assert not any("plain-text-password" in line for line in refused)


def test_a_declared_key_without_default_is_required_as_the_cli_has_it(tmp_path):
    """The defect this contract fixes: optional keys declared without a default made every stack fail."""
    project = Project("presencesync", {"secretExpiry": Declared("string", None, None, False),
                                       "secretRotationDays": Declared("integer", None, None, False)})
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(json.dumps({"config": {"presencesync:secretExpiry": "2y"}}))
    _, refused = apply_gate(project, "dev", read_stack_config(path))
    assert refused == ["presencesync:secretRotationDays: Stack 'dev' is missing configuration value "
                       "'secretRotationDays', so the Pulumi CLI refuses to run it; set it in the stack file, or "
                       "with pulumi config set presencesync:secretRotationDays VALUE"]
    # Keys of other namespaces are not the project's to require, and integers may be whole floats.
    assert apply_gate(Project("p", {"other:key": Declared(None, None, None, False)}), "dev",
                      read_stack_config(path))[1] == []


@pytest.mark.parametrize(("yaml_text", "as_cli_passes"), [
    ("2027-01-01", "2027-01-01 00:00:00 +0000 UTC"),
    ("2027-01-01T00:00:00Z", "2027-01-01 00:00:00 +0000 UTC"),
    ("'2027-01-01T00:00:00Z'", "2027-01-01T00:00:00Z"),
    ("2027-01-01T00:00:00", "2027-01-01T00:00:00"),  # a T needs a zone to be a timestamp
    ("2027-1-2 3:04:05", "2027-01-02 03:04:05 +0000 UTC"),
    ("NO", "NO"), ("yes", "yes"), ("on", "on"), ("True", "true"), ("~", "null"),
    ("0o17", "15"), ("0x1F", "31"), ("017", "15"), ("1_000", "1000"), ("1e3", "1000"), ("1.50", "1.5"),
    ("'017'", "017"),
])
def test_values_reach_the_program_as_the_cli_passes_them(tmp_path, yaml_text, as_cli_passes):
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text(f"config:\n  presencesync:displayName: {yaml_text}\n")
    assert read_stack_config(path).values["presencesync:displayName"] == as_cli_passes


def test_objects_reach_the_program_as_json_with_nested_dates_as_text(tmp_path):
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text("config:\n  syncUser:\n    userPrincipalName: s@contoso.com\n    create: yes\n    when: 2027-01-01\n")
    value = read_stack_config(path).values["presencesync:syncUser"]  # no namespace: the project's
    assert json.loads(value) == {"create": "yes", "userPrincipalName": "s@contoso.com",
                                 "when": "2027-01-01 00:00:00 +0000 UTC"}


@pytest.mark.parametrize(("text", "message"), [
    ("config:\n  presencesync:profile: ucwa\n  presencesync:profile: graph\n",
     "not valid YAML at line 3 (mapping key 'presencesync:profile' already defined at line 2)"),
    ("config:\n  presencesync:profile: [unclosed\n", "not valid YAML at line"),
    ("- a list\n", "has no 'config:' map"),
    ("config: [1, 2]\n", "has no 'config:' map"),
])
def test_unreadable_stack_files_are_one_line(tmp_path, text, message):
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text(text)
    with pytest.raises(StackFileError) as raised:
        read_stack_config(path)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_what_the_cli_would_silently_drop_is_a_problem(tmp_path):
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text("presencesync:profile: graph\nconfig:\n  presencesync:logoutUrl:\n  presencesync:x: .inf\n")
    problems = read_stack_config(path).problems
    assert any("'presencesync:profile' is outside config:" in p for p in problems)
    assert any(p.startswith("presencesync:logoutUrl: has no value") for p in problems)
    assert any(p.startswith("presencesync:x: holds .inf") for p in problems)


@pytest.mark.parametrize("yaml_value", [
    "[1, 2]", "{a: 1}", "!!binary aGVsbG8=", "!!set {a, b}", "!!omap [a: 1]", "!!timestamp 2027-01-01",
    "!!str 2027-01-01", "1e400", ".inf", "-.nan", "0x", "''", "\"\\u0000\"", "&a [*a]", "<<: {x: 1}",
    "99999999999999999999999", "2027-02-30", "- - - deep", "!custom x", "|\n    multi\n    line",
])
@pytest.mark.parametrize("key", ["profile", "syncUser", "secretExpiry", "redirectUris", "postDeployTimeout"])
def test_no_value_a_yaml_file_can_hold_gives_a_traceback(tmp_path, key, yaml_value):
    from datetime import UTC, datetime

    from presencesync.config import ConfigError
    from presencesync.project_config import stack_settings

    path = tmp_path / "Pulumi.t.yaml"
    indented = yaml_value.replace("\n", "\n  ")
    path.write_text(f"config:\n  presencesync:{key}: {indented}\n")
    try:
        stack_settings(path, "t", datetime.now(UTC))
    except (ConfigError, StackFileError) as error:
        assert all(line and "\n" not in line for line in str(error).split("\n"))
