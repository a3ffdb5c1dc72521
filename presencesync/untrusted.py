"""Text from a stack file (which may come from a pull request) or from a server: what it may hold, and
how it is printed so that it stays text.

CI runners take commands from a job's output. GitHub Actions reads a line that starts with `::`, and
every line a step appends to $GITHUB_ENV sets a variable; the Azure Pipelines agent runs `##vso[`
found anywhere in a line of stdout or stderr (azure-pipelines-agent, Command.cs `TryParse`:
`message.IndexOf(LoggingCommandPrefix)`), and reads lines as .NET's ReadLine splits them (on a bare
carriage return too). So a value holding a line break, or `##vso[`, becomes a command once printed.

The Azure CLI replaces an argument with the content of a local file when the argument, or its part
after the first `=`, starts with `@` (azure-cli, src/azure-cli-core/azure/cli/core/commands/__init__.py,
`_expand_file_prefixed_files`, which `AzCliCommandInvoker.execute` applies to every argument; a
leading `~` is expanded, and a name that cannot be opened is left as it is); knack's parser then does
the same once more for an argument starting with `@` (knack/parser.py, `CLICommandParser.parse_args`).
So a value that reaches an `az` argument must neither start with `@` nor hold `=@`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_LINE_SEPARATORS = "\u2028\u2029"
_VSO = re.compile(r"##vso\[", re.IGNORECASE)
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def is_guid(text: object) -> bool:
    return isinstance(text, str) and GUID.fullmatch(text) is not None


def control_characters(text: str) -> list[str]:
    """The control characters (C0, DEL, C1) and Unicode line and paragraph separators in `text`, as U+XXXX."""
    found = {c for c in text if unicodedata.category(c) == "Cc" or c in _LINE_SEPARATORS}
    return [f"U+{ord(c):04X}" for c in sorted(found)]


def text_problem(text: str) -> str | None:
    """Why a config value or key cannot be used as text anywhere, or None."""
    if found := control_characters(text):
        return (f"holds control characters ({', '.join(found)}), which would start a new line (and a CI "
                "command) wherever it is printed; remove them")
    if _VSO.search(_visible(text)):
        return ("holds the prefix of an Azure DevOps logging command (two # and vso[), which the agent runs "
                "wherever it is printed; remove it")
    return None


def az_file_problem(text: str) -> str | None:
    """Why the Azure CLI would read a file for this value given as an argument, or None."""
    if text.startswith("@") or "=@" in text:
        return ("starts with @ (or holds =@), which the Azure CLI reads as the name of a local file whose "
                "content it sends instead (the az script would put that file in the tenant); remove the @")
    return None


def value_problems(values: Mapping[str, str], *, secret_keys: Iterable[str], az_namespace: str) -> list[str]:
    """One `key: problem` line per config key or value that holds what `text_problem` refuses, and per value
    in `az_namespace` (other than a secret's) that the Azure CLI would read as a file name.

    Objects and arrays arrive as JSON text, where a line break is escaped: their keys and strings are checked
    one by one. A secret's value is never quoted."""
    secrets = frozenset(secret_keys)
    problems: list[str] = []
    for key, raw in values.items():
        if why := text_problem(key):
            problems.append(f"{printable(key)}: the key {why}")
            continue
        for where, text in _strings(key, raw):
            if why := text_problem(text):
                problems.append(f"{printable(where)}: {why}")
            elif key.startswith(f"{az_namespace}:") and key not in secrets and (why := az_file_problem(text)):
                problems.append(f"{printable(where)}: '{printable(text)}' {why}")
    return problems


def _strings(key: str, raw: str) -> Iterator[tuple[str, str]]:
    """The value's text, and where it is JSON, every key and string inside it with its path."""
    yield key, raw
    if raw[:1] not in "[{":
        return
    try:
        parsed = json.loads(raw)
    except ValueError:
        return
    yield from _leaves(key, parsed)


def _leaves(path: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(f"{path}[{i}]", item)
    elif isinstance(value, dict):
        for name, item in value.items():
            yield f"{path}.{name}", name
            yield from _leaves(f"{path}.{name}", item)


def printable(text: str) -> str:
    """`text` on one line and inert: control, format and separator characters as escapes (\\n, \\u2028),
    a backslash doubled, and `##vso[` broken up, so printing it starts no line and no CI command."""
    shown = "".join(_escape(c) for c in text)
    return _VSO.sub(lambda m: m.group(0)[0] + "\\u0023" + m.group(0)[2:], shown)


def excerpt(text: str, limit: int = 60) -> str:
    """A value as a message may quote it: on one line, and cut short so a huge value never floods the log."""
    shown = printable(text)
    return shown if len(shown) <= limit else f"{shown[:limit - 20]}... ({len(text)} characters)"


def _escape(c: str) -> str:
    if c == "\\":
        return "\\\\"
    if c in _ESCAPES:
        return _ESCAPES[c]
    if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp"):
        return f"\\u{ord(c):04x}"
    return c


def _visible(text: str) -> str:
    """`text` without format characters (zero-width and the like), which a culture-aware search skips."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf")
