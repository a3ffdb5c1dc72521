"""YAML as the Pulumi CLI reads it (Go's gopkg.in/yaml.v3, YAML 1.2 rules, not PyYAML's YAML 1.1), and each
value as the CLI hands it to the program: text, a number as JSON prints it, a time as Go's
`time.Time.String()` text, objects and arrays as JSON; an alias bomb is refused as yaml.v3 refuses it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import yaml

from presencesync.untrusted import excerpt

_PLAIN = "tag:presencesync:plain"  # a plain (unquoted, untagged) scalar, resolved as yaml.v3 resolves it
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
# yaml.v3's timestamp layouts (resolve.go, `allowedTimestampFormats`): a T and a zone, a space and no
# zone, or a date alone; month, day and time fields may have one digit.
_TIMESTAMP = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?"
                        r"(Z|[+-]\d{2}:\d{2}))|(?: (\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?))?")


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
