"""Reading `Pulumi.<stack>.yaml` without the CLI, handing each value over as the CLI hands it to the program.

The Pulumi CLI reads stack files with Go's gopkg.in/yaml.v3 (YAML 1.2 rules), not PyYAML's YAML 1.1:
only true/false (in three spellings) are booleans, so `yes`, `on` and `NO` stay strings; `0o17`, `0x1f`
and `1_000` are integers and `1e3` a float; an unquoted date or timestamp becomes a time, which reaches
the program as Go's `time.Time.String()` text (`2027-01-01 00:00:00 +0000 UTC`); a key given twice is
an error. Scalars reach the program as text (a number as JSON prints it), objects and arrays as JSON,
and a key without a namespace is the project's. So `check` sees exactly what `pulumi up` would.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from presencesync.config_keys import NAMESPACE
from presencesync.errors import PresenceSyncError
from presencesync.untrusted import excerpt

STACK_FILE_KEYS = ("secretsprovider", "encryptedkey", "encryptionsalt", "config", "environment")
MAX_STACK_FILE_BYTES = 256 * 1024  # a tenant's stack file is a few kilobytes; reading this much takes ~0.6 s
_PLAIN = "tag:presencesync:plain"  # a plain (unquoted, untagged) scalar, resolved as yaml.v3 resolves it
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
# A ciphertext as the passphrase and cloud secrets managers write it (sdk/go/common/resource/config/crypt.go,
# symmetricCrypter.EncryptValue: v1:<nonce>:<ciphertext>, both base64); the service (Pulumi Cloud) manager
# writes plain base64 (pkg/secrets/service/manager.go, serviceCrypter.EncryptValue).
_BASE64 = r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
_V1_CIPHERTEXT = re.compile(rf"v1:{_BASE64}:{_BASE64}")
_SERVICE_CIPHERTEXT = re.compile(_BASE64)
# yaml.v3's timestamp layouts (resolve.go, `allowedTimestampFormats`): a T and a zone, a space and no
# zone, or a date alone; month, day and time fields may have one digit.
_TIMESTAMP = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?"
                        r"(Z|[+-]\d{2}:\d{2}))|(?: (\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?))?")


class StackFileError(PresenceSyncError):
    """A stack file that cannot be read; the message names the file and the fix."""


@dataclass(frozen=True)
class StackConfig:
    path: Path
    values: dict[str, str]  # as Pulumi hands them to the program: strings, JSON for objects and arrays
    encrypted: frozenset[str]  # keys holding `secure:` values, unreadable without the CLI
    objects: frozenset[str] = frozenset()  # keys whose values the CLI hands over as JSON (maps, lists, null)
    problems: tuple[str, ...] = ()  # what the CLI would silently drop (keys outside config:, empty values)


@dataclass(frozen=True)
class GoTime:
    """An unquoted YAML timestamp, which the CLI turns into text with Go's time.Time.String()."""

    when: datetime  # with its zone (UTC where none was written)
    fraction: str  # the fraction of a second as written, without trailing zeros

    def text(self) -> str:
        when = self.when
        fraction = f".{self.fraction}" if self.fraction else ""
        offset = when.utcoffset() or timedelta()
        sign, minutes = ("-" if offset < timedelta() else "+"), abs(int(offset.total_seconds())) // 60
        numeric = f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
        zone = "UTC" if offset == timedelta() else numeric  # Go names a parsed fixed offset by its digits
        return f"{when:%Y-%m-%d %H:%M:%S}{fraction} {numeric} {zone}"


class _GoYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with yaml.v3's rules for plain scalars and duplicate keys."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return "tag:yaml.org,2002:merge" if value == "<<" else _PLAIN
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or key_node.value == "<<":
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"mapping key {excerpt(str(key))!r} already defined at line {seen[key] + 1}",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _plain_scalar(loader: _GoYamlLoader, node: yaml.ScalarNode) -> Any:
    return resolve_plain(node.value)


_GoYamlLoader.add_constructor(_PLAIN, _plain_scalar)


def resolve_plain(text: str) -> Any:
    """A plain scalar's value as yaml.v3 resolves it (resolve.go, `resolve`)."""
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in (".nan", ".NaN", ".NAN"):
        return math.nan
    if text.lstrip("+-") in (".inf", ".Inf", ".INF"):
        return -math.inf if text.startswith("-") else math.inf
    if not text or not (text[0].isdigit() or text[0] in "+-."):
        return text
    if (when := _timestamp(text)) is not None:
        return when
    plain = text.replace("_", "")
    for prefix, base in (("0b", 2), ("-0b", 2), ("0o", 8), ("-0o", 8), ("0x", 16), ("-0x", 16), ("+0x", 16)):
        if plain.lower().startswith(prefix) and plain[len(prefix):]:
            try:
                number = int(plain[len(prefix):], base)
            except ValueError:
                return text
            return -number if prefix.startswith("-") else number
    if re.fullmatch(r"[-+]?0[0-7]+", plain):  # YAML 1.1 octal, still read by yaml.v3
        return (-1 if plain[0] == "-" else 1) * int(plain.lstrip("+-"), 8)
    if re.fullmatch(r"[-+]?[0-9]+", plain):
        return int(plain)
    if _FLOAT.fullmatch(plain) and not math.isinf(real := float(plain)):  # Go refuses an overflow: text
        return real
    return text


def _timestamp(text: str) -> GoTime | None:
    match = _TIMESTAMP.fullmatch(text)
    if not match:
        return None
    year, month, day, *t_fields = match.groups()
    hour, minute, second, fraction, zone = t_fields[:5] if t_fields[0] is not None else (*t_fields[5:], None)
    try:
        tz = UTC if zone in (None, "Z") else timezone(
            (1 if zone[0] == "+" else -1) * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        when = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                        int((fraction or ".0")[1:7].ljust(6, "0")), tz)
    except ValueError:
        return None
    return GoTime(when, (fraction or "").rstrip("0"))


def _from_explicit_tag(value: Any) -> Any:
    """What yaml.v3 makes of the explicitly tagged values PyYAML builds other types for."""
    if isinstance(value, bytes):  # !!binary: Go decodes it to a string
        return value.decode("utf-8", "replace")
    if isinstance(value, set):  # !!set: a map of nulls
        return dict.fromkeys(value)
    if isinstance(value, tuple):  # the pairs of !!omap and !!pairs
        return list(value)
    if isinstance(value, datetime):  # !!timestamp
        return GoTime(value if value.tzinfo else value.replace(tzinfo=UTC), f"{value.microsecond:06d}".rstrip("0"))
    if isinstance(value, date):
        return GoTime(datetime(value.year, value.month, value.day, tzinfo=UTC), "")
    return value


def as_program_text(value: Any) -> str:
    """A stack value as the CLI hands it to the program (config/object.go, `MarshalString`)."""
    value = _from_explicit_tag(value)
    if isinstance(value, str):
        return value
    if isinstance(value, GoTime):
        return value.text()
    if isinstance(value, bool | int | float):
        return _json_scalar(value)
    return json.dumps(_for_json(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _for_json(value: Any) -> Any:
    value = _from_explicit_tag(value)
    if isinstance(value, dict):
        return {(as_program_text(k) if k is not None else "<nil>"): _for_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_for_json(v) for v in value]
    if isinstance(value, GoTime):
        return value.text()
    if isinstance(value, float):
        return json.loads(_json_scalar(value))
    return value


def _json_scalar(value: bool | int | float) -> str:
    """A number or boolean as Go's encoding/json prints it (1.0 as 1, 1e21 as 1e+21)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        raise ValueError("unsupported value")
    if value == 0 or 1e-6 <= abs(value) < 1e21:
        return format(Decimal(repr(value)).normalize(), "f")
    return re.sub(r"e([+-])0(\d)$", r"e\1\2", repr(value))


def parse_yaml(text: str) -> Any:
    """A YAML document read with yaml.v3's rules, as the Pulumi CLI reads it."""
    loader = _GoYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_excessive_aliasing(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def allowed_alias_ratio(decoded: int) -> float:
    """The share of decoded nodes yaml.v3 lets come through aliases (decode.go, `allowedAliasRatio`)."""
    low, high = 400_000, 4_000_000
    if decoded <= low:
        return 0.99
    if decoded >= high:
        return 0.10
    return 0.99 - 0.89 * (decoded - low) / (high - low)


def _refuse_excessive_aliasing(root: yaml.Node) -> None:
    """Count the nodes as yaml.v3 decodes them (decode.go, `unmarshal` and `alias`), and stop as it does
    with "document contains excessive aliasing": every node decoded counts, a node decoded through an
    alias counts as aliased too, and past 100 aliased and 1,000 decoded the aliased share may be at most
    `allowed_alias_ratio`. An alias bomb of a few hundred bytes so stops within a few thousand nodes.

    PyYAML composes an alias as the very node it names: meeting a node a second time is an alias. (Merge
    keys are counted as ordinary aliases; yaml.v3 also decodes the merging map's keys once more.)"""
    decoded = aliased = 0
    seen: set[int] = set()
    active: set[int] = set()  # a node that contains itself is left to the reader (Pulumi refuses it too)

    def visit(node: yaml.Node, depth: int) -> None:
        nonlocal decoded, aliased
        if id(node) in active:
            return
        if id(node) in seen:  # an alias: the alias node itself, then what it names, all aliased
            decoded, aliased = decoded + 1, aliased + (depth > 0)
            depth += 1
        seen.add(id(node))
        decoded, aliased = decoded + 1, aliased + (depth > 0)
        if aliased > 100 and decoded > 1000 and aliased / decoded > allowed_alias_ratio(decoded):
            raise yaml.MarkedYAMLError(problem="document contains excessive aliasing, which the Pulumi CLI "
                                       "refuses; write the values out", problem_mark=node.start_mark)
        active.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                visit(item, depth)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                visit(key, depth)
                visit(value, depth)
        active.discard(id(node))

    visit(root, 0)


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
