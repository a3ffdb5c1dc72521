"""The Pulumi CLI's config gate, applied offline: what `Pulumi.yaml` declares, and how the CLI checks a
stack against it and fills in defaults before the program runs (for up, preview, refresh, destroy, import).

The rules are the CLI's own (pkg/workspace/config.go, `mergeConfig` and `validateStackConfigValues`;
sdk/go/common/workspace/project.go, `ValidateConfigValue`):
- a key in the project's namespace declared with neither `default` nor `value` is required in every stack;
- a declared default is handed to the program as if the stack had set it (a string as it is, a boolean
  or an integer as its text, anything else as JSON);
- a `secret: true` key must hold a `secure:` value;
- a typed key's value must be of its type: `string` any scalar, `integer` text that parses as a whole
  number, `boolean` true or false, `object` a map, `array` a list whose items are of the item type.
The CLI stops at the first problem; here every problem is one line, so all are fixed in one go.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from presencesync.config import ConfigError, Settings, load_settings
from presencesync.config_keys import NAMESPACE, SECRET_KEYS
from presencesync.go_yaml import as_program_text, parse_yaml
from presencesync.stack_file import StackConfig, StackFileError, read_stack_config, read_stack_text
from presencesync.untrusted import excerpt

PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"


@dataclass(frozen=True)
class Declared:
    """One key under `config:` in Pulumi.yaml."""

    type: str | None
    items: dict[str, Any] | None
    default: Any
    secret: bool

    @property
    def full_type(self) -> str | None:
        """The type as the CLI names it in its messages, e.g. array<string>."""
        if self.items is None:
            return self.type
        name, depth = "", 0
        items: dict[str, Any] | None = self.items
        while items is not None:
            name, items, depth = str(items.get("type")), items.get("items"), depth + 1
        return "array<" * depth + name + ">" * depth


@dataclass(frozen=True)
class Project:
    name: str
    config: dict[str, Declared]  # by key without the project's namespace


def load_project(path: Path = PROJECT_FILE) -> Project:
    try:
        document = parse_yaml(read_stack_text(path))  # a regular file, its aliases capped, like a stack file
    except (OSError, yaml.YAMLError) as error:
        raise StackFileError(f"{path}: cannot be read as a Pulumi project ({error})") from None
    declared = {}
    for key, spec in (document.get("config") or {}).items():
        spec = spec if isinstance(spec, dict) else {"default": spec}  # `key: value` is a shorthand for a default
        default = spec.get("value", spec.get("default"))
        declared[str(key).removeprefix(f"{document['name']}:")] = Declared(
            spec.get("type"), spec.get("items"), default, bool(spec.get("secret", False)))
    return Project(str(document["name"]), declared)


def apply_gate(project: Project, stack_name: str, stack: StackConfig) -> tuple[dict[str, str], list[str]]:
    """The values the program would receive (the stack's, with the declared defaults filled in), and
    every reason the CLI would refuse the stack, one line each naming the key and the fix."""
    values = dict(stack.values)
    problems: list[str] = []
    program_secrets = {f"{NAMESPACE}:{k}" for k in SECRET_KEYS}
    for name, declared in sorted(project.config.items()):
        key = name if ":" in name else f"{project.name}:{name}"
        if key not in values:
            if declared.default is not None:
                values[key] = as_program_text(declared.default)
            elif not key.startswith(f"{project.name}:"):
                continue  # another namespace's key is not the project's to require
            elif dotted := sorted(k for k in values if k.startswith((f"{key}.", f"{key}["))):
                problems.append(f"{key}: Stack '{stack_name}' is missing configuration value '{name}': the stack "
                                f"file has '{excerpt(dotted[0])}' as a key of its own; nest it under {key} as a "
                                "YAML map, or set it with pulumi config set --path "
                                f"{shlex.quote(excerpt(dotted[0]))} VALUE")
            else:
                problems.append(f"{key}: Stack '{stack_name}' is missing configuration value '{name}', so the "
                                f"Pulumi CLI refuses to run it; {_how_to_set(key, declared)}")
            continue
        # The sync users' passwords cannot be declared secret (config.py, DEFAULTS) but must be encrypted all the same.
        if (declared.secret or key in program_secrets) and key not in stack.encrypted:
            problems.append(f"{key}: must be encrypted, and is in plain text in the stack file; remove it from the "
                            f"file and set it with pulumi config set --secret {shlex.quote(key)}")
            continue
        if declared.type is None or key in stack.encrypted:
            continue  # an encrypted value's type is checked when the CLI decrypts it
        content: Any = values[key]
        if key in stack.objects:
            content = json.loads(content)
        if not _of_type(declared.type, declared.items, content):
            shown = "" if declared.secret else f" ('{excerpt(values[key])}')"
            fix = _how_to_set(key, declared)
            if declared.type == "boolean" and str(content).lower() in ("yes", "no", "on", "off", "y", "n"):
                # YAML 1.1 booleans, which the CLI's YAML 1.2 reader (gopkg.in/yaml.v3) keeps as strings.
                word = "true" if str(content).lower() in ("yes", "on", "y") else "false"
                fix = f"write {word}: Pulumi reads stack files as YAML 1.2, where '{excerpt(str(content))}' is text"
            problems.append(f"{key}: must be of type '{declared.full_type}'{shown}, or the Pulumi CLI refuses the "
                            f"stack; {fix}")
    return values, problems


def _of_type(type_name: str, items: dict[str, Any] | None, value: Any) -> bool:
    """sdk/go/common/workspace/project.go, `ValidateConfigValue`."""
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return True
        return isinstance(value, str) and _atoi(value)
    if type_name == "boolean":
        return value in ("true", "false") or isinstance(value, bool)
    if type_name == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or items is None:
        return False
    return all(_of_type(str(items.get("type")), items.get("items"), item) for item in value)


def _atoi(text: str) -> bool:
    """Go's strconv.Atoi: an optional sign and decimal digits, nothing else."""
    digits = text[1:] if text[:1] in "+-" else text
    return digits.isascii() and digits.isdigit()


def _how_to_set(key: str, declared: Declared) -> str:
    q = shlex.quote  # Pulumi.yaml may come from a pull request too
    if declared.secret or key.removeprefix(f"{NAMESPACE}:") in SECRET_KEYS:
        return f"set it with pulumi config set --secret {q(key)}"
    if declared.type == "object":
        return f"set it as a YAML map in the stack file, or with pulumi config set --path {q(key + '.FIELD')} VALUE"
    if declared.type == "array":
        return f"set it as a YAML list in the stack file, or with pulumi config set --path {q(key + '[0]')} VALUE"
    return f"set it in the stack file, or with pulumi config set {q(key)} VALUE"


def stack_settings(path: Path, stack_name: str, now: datetime) -> tuple[Settings, dict[str, str], frozenset[str]]:
    """A stack's settings as `pulumi up` would hand them to the program: first the CLI's gate (the stack
    file read as the CLI reads it, Pulumi.yaml's defaults and rules), then the program's own rules.
    Also returns the values and the encrypted keys; raises ConfigError with every problem."""
    stack = read_stack_config(path)
    values, refused = apply_gate(load_project(), stack_name, stack)
    problems = [*stack.problems, *refused]
    try:
        settings = load_settings(values, now=now, encrypted=stack.encrypted)
    except ConfigError as error:
        # A key the gate refused already has its line; the program's view of it would only repeat it.
        gated = {line.split(": ", 1)[0] for line in refused}
        problems += [p for p in error.problems if re.split(r"[.\[]", p.split(": ", 1)[0], maxsplit=1)[0] not in gated]
    if problems:
        raise ConfigError(problems)
    return settings, values, stack.encrypted
