"""Reading a stack's settings from `Pulumi.<stack>.yaml` without the Pulumi CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class StackFileError(Exception):
    """A stack file that cannot be read; the message names the file and the fix."""


@dataclass(frozen=True)
class StackConfig:
    path: Path
    values: dict[str, str]  # as Pulumi hands them to the program: strings, JSON for objects and arrays
    encrypted: frozenset[str]  # keys holding `secure:` values, unreadable without the CLI


def stack_path(stack: str, project_dir: Path) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def read_stack_config(path: Path) -> StackConfig:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StackFileError(f"{path}: no such stack file; run from the project directory, "
                             "or pass --config FILE") from None
    except (OSError, UnicodeDecodeError) as error:
        raise StackFileError(f"{path}: cannot be read ({error})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise StackFileError(f"{path}: not valid YAML{where}; fix the file's syntax") from None
    document = document or {}
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise StackFileError(f"{path}: has no 'config:' map; see Pulumi.dev.yaml for the layout")
    values: dict[str, str] = {}
    encrypted: set[str] = set()
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            encrypted.add(str(key))
            values[str(key)] = "(encrypted)"
        else:
            values[str(key)] = _as_pulumi_string(value)
    return StackConfig(path=path, values=values, encrypted=frozenset(encrypted))


def _as_pulumi_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)
