"""Reading `Pulumi.<stack>.yaml` without the CLI, handing each value over as the CLI hands it to the program.

The file is read only as a regular file within the project, and as YAML the way the CLI reads it
(go_yaml.py); a key without a namespace is the project's, and `secure:` values are checked to be
ciphertext this stack can hold. So `check` sees exactly what `pulumi up` would.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from presencesync.config_keys import NAMESPACE
from presencesync.errors import PresenceSyncError
from presencesync.go_yaml import as_program_text, parse_yaml
from presencesync.untrusted import excerpt

STACK_FILE_KEYS = ("secretsprovider", "encryptedkey", "encryptionsalt", "config", "environment")
MAX_STACK_FILE_BYTES = 256 * 1024  # a tenant's stack file is a few kilobytes; reading this much takes ~0.6 s
# A ciphertext as the passphrase and cloud secrets managers write it (sdk/go/common/resource/config/crypt.go,
# symmetricCrypter.EncryptValue: v1:<nonce>:<ciphertext>, both base64); the service (Pulumi Cloud) manager
# writes plain base64 (pkg/secrets/service/manager.go, serviceCrypter.EncryptValue).
_BASE64 = r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
_V1_CIPHERTEXT = re.compile(rf"v1:{_BASE64}:{_BASE64}")
_SERVICE_CIPHERTEXT = re.compile(_BASE64)


class StackFileError(PresenceSyncError):
    """A stack file that cannot be read; the message names the file and the fix."""


@dataclass(frozen=True)
class StackConfig:
    path: Path
    values: dict[str, str]  # as Pulumi hands them to the program: strings, JSON for objects and arrays
    encrypted: frozenset[str]  # keys holding `secure:` values, unreadable without the CLI
    objects: frozenset[str] = frozenset()  # keys whose values the CLI hands over as JSON (maps, lists, null)
    problems: tuple[str, ...] = ()  # what the CLI would silently drop (keys outside config:, empty values)


def read_stack_text(path: Path) -> str:
    """A stack file's text, refusing what a pull request could point its name at: a symbolic link out of
    the file's own directory, anything but a regular file (`/dev/zero` never ends), or more than
    MAX_STACK_FILE_BYTES."""
    target = path
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(path.parent.resolve()):
            raise StackFileError(f"{path}: is a symbolic link to {target}, outside the project directory; "
                                 "replace the link with the stack file itself")
    try:
        descriptor = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise StackFileError(f"{path}: no such stack file; run from the project directory, "
                             "or pass --config FILE") from None
    except OSError as error:
        raise StackFileError(f"{path}: cannot be read ({error.strerror})") from None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise StackFileError(f"{path}: is not a regular file (a directory, device or pipe); "
                                 "give the stack file itself")
        data = handle.read(MAX_STACK_FILE_BYTES + 1)
    if len(data) > MAX_STACK_FILE_BYTES:
        raise StackFileError(f"{path}: is larger than {MAX_STACK_FILE_BYTES // 1024} KiB, far more than a "
                             "stack's config; check the file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise StackFileError(f"{path}: cannot be read ({error})") from None


def stack_path(stack: str, project_dir: Path) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def read_stack_config(path: Path, project: str = NAMESPACE) -> StackConfig:
    """The stack file's config as the CLI would hand it to the program (workspace/loaders.go,
    `LoadProjectStackBytes`): keys without a namespace are the project's."""
    text = read_stack_text(path)
    try:
        document = parse_yaml(text)
    except RecursionError:  # yaml.v3 reads 10,000 levels (scannerc.go, `max_flow_level`); PyYAML far fewer
        raise StackFileError(f"{path}: nests values too deeply to be read; flatten the file") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        why = getattr(error, "problem", None) or "a syntax error"
        raise StackFileError(f"{path}: not valid YAML{where} ({why}); fix the file") from None
    document = document or {}
    if not isinstance(document, dict) or not isinstance(document.get("config") or {}, dict):
        raise StackFileError(f"{path}: has no 'config:' map; see Pulumi.dev.yaml for the layout")
    problems = [f"{path}: '{excerpt(str(key))}' is outside config:, where Pulumi ignores it; move it under config:"
                for key in document if key not in STACK_FILE_KEYS]
    values: dict[str, str] = {}
    encrypted: set[str] = set()
    objects: set[str] = set()
    for raw_key, value in (document.get("config") or {}).items():
        key = raw_key if isinstance(raw_key, str) else as_program_text(raw_key)
        key = key if ":" in key else f"{project}:{key}"
        with contextlib.suppress(RecursionError):  # a value that contains itself: reported below
            problems += [f"{excerpt(key)}: {why}" for why in _secure_problems(value, document)]
        if value is None:
            problems.append(f"{excerpt(key)}: has no value (Pulumi would pass the text null); give it one or "
                            "remove the key")
        elif isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str):
            encrypted.add(key)
            values[key] = "(encrypted)"
            continue
        if value is None or isinstance(value, dict | list):
            objects.add(key)
        try:
            values[key] = as_program_text(value)
            if _has_secure(value):
                encrypted.add(key)
        except ValueError:
            problems.append(f"{excerpt(key)}: holds .inf or .nan, which Pulumi cannot pass on; quote it or "
                            "give a number")
        except RecursionError:
            problems.append(f"{excerpt(key)}: contains itself through a YAML alias, which Pulumi refuses; "
                            "write the value out")
    return StackConfig(path=path, values=values, encrypted=frozenset(encrypted),
                       objects=frozenset(objects), problems=tuple(problems))


def secrets_provider_changes(base: Path, head: Path) -> list[str]:
    """How `head` changes the stack's secrets provider against `base` (the same stack file on the base
    branch), one line per key: a pull request that swaps `secretsprovider` or `encryptedkey` moves where the
    stack's secrets are decrypted, which a reviewer must see. A missing `base` is a new stack: nothing to compare."""
    if not base.exists():
        return []
    before, after = (_document(path) for path in (base, head))
    changes = []
    for key in ("secretsprovider", "encryptedkey"):
        old, new = before.get(key), after.get(key)
        if old != new:
            shown = (f"from '{excerpt(str(old))}' to '{excerpt(str(new))}'" if key == "secretsprovider" else
                     "its value" if old and new else "added" if new else "removed")
            changes.append(f"{head.name}: {key} changes ({shown}): this moves where the stack's secrets are "
                           "decrypted; a reviewer must confirm it was meant (pulumi stack change-secrets-provider)")
    return changes


def _document(path: Path) -> dict[Any, Any]:
    try:
        document = parse_yaml(read_stack_text(path))
    except yaml.YAMLError as error:
        raise StackFileError(f"{path}: cannot be read as a stack file ({type(error).__name__})") from None
    return document if isinstance(document, dict) else {}


def _secure_problems(value: Any, document: dict[Any, Any]) -> list[str]:
    """Why `secure:` values in `value` cannot belong to this stack file: the secrets managers mark the stack
    they encrypt for (pkg/secrets/passphrase/manager.go `EditProjectStack` writes encryptionsalt;
    pkg/secrets/cloud/manager.go writes secretsprovider and encryptedkey; pkg/secrets/service/manager.go
    clears all three), so a v1: ciphertext in a file with neither salt nor key was copied from another stack."""
    if isinstance(value, list):
        return [why for item in value for why in _secure_problems(item, document)]
    if not isinstance(value, dict):
        return []
    if set(value) != {"secure"}:
        return [why for item in value.values() for why in _secure_problems(item, document)]
    text = value["secure"]
    fix = "remove the value from the file and set it again with pulumi config set --secret"
    if not isinstance(text, str) or not text:
        return [f"secure: holds no ciphertext; {fix}"]
    keyed = bool(document.get("encryptionsalt") or document.get("encryptedkey"))
    if _V1_CIPHERTEXT.fullmatch(text):
        if keyed:
            return []
        return [f"secure: holds a ciphertext (v1:...) but the stack file has neither encryptionsalt nor "
                f"encryptedkey, so it was encrypted for another stack and cannot be decrypted for this one; {fix}"]
    if not keyed and _SERVICE_CIPHERTEXT.fullmatch(text):
        return []
    return [f"secure: '{excerpt(text, 24)}' is not a ciphertext of this stack's secrets provider; {fix}"]


def _has_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return (set(value) == {"secure"}) or any(_has_secure(v) for v in value.values())
    return isinstance(value, list) and any(_has_secure(v) for v in value)
