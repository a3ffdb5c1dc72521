"""Reading a stack's config values: the reader that applies the declared defaults and collects one problem
line per key, the nearest known name it suggests, and the rules for a domain name and a URL."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from presencesync.config_keys import DEFAULTS, NAMESPACE
from presencesync.untrusted import excerpt

DOMAIN = re.compile(r"(?=.{4,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
# Characters Entra ID refuses in a redirect URI; a wildcard is refused for work and school accounts.
_REDIRECT_URI_REFUSED = frozenset("!$'(),;* ")


class Reader:
    """Reads `presencesync:` keys, applying defaults and collecting problems."""

    def __init__(self, values: Mapping[str, str], encrypted: frozenset[str]) -> None:
        self.values = values
        self.encrypted = encrypted
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{NAMESPACE}:{key}: {message}")

    def optional(self, key: str) -> str | None:
        """The key's value, or None where it is absent or holds its declared "not set" default."""
        value = self.values.get(f"{NAMESPACE}:{key}")
        default = DEFAULTS.get(key)
        if value is not None and default in ("", 0, {}) and value == str(default):
            return None
        return value

    def get(self, key: str) -> str:
        value = self.optional(key)
        if value is not None:
            return value
        default = DEFAULTS[key]
        return default if isinstance(default, str) else json.dumps(default)

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.get(key)
        if value not in allowed:
            self.problem(key, f"'{excerpt(value)}' is not one of {', '.join(allowed)}{suggest(value, allowed)}")
        return value

    def boolean(self, key: str, default: bool | None = None) -> bool:
        value = self.get(key) if default is None else self.optional(key) or json.dumps(default)
        if value.lower() not in ("true", "false"):
            self.problem(key, f"'{excerpt(value)}' is not true or false")
        return value.lower() == "true"

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.get(key)
        if not value.isdigit() or not low <= int(value) <= high:
            self.problem(key, f"'{excerpt(value)}' is not a whole number of seconds from {low} to {high}")
            return low
        return int(value)

    def parse_json(self, key: str, raw: str, kind: type, what: str) -> Any:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, kind):
            self.problem(key, f"is not {what}; set it as YAML {what} in the stack file "
                         f"or with pulumi config set --path")
            return None
        return value

    def strings(self, key: str, check: Callable[[str], str | None]) -> list[str]:
        items = self.parse_json(key, self.get(key), list, "an array")
        good: list[str] = []
        for i, item in enumerate(items or []):
            why = "is not a string" if not isinstance(item, str) else check(item)
            if why:
                self.problem(f"{key}[{i}]", f"'{excerpt(str(item))}' {why}")
            else:
                good.append(item)
        return good

    def flags(self, key: str, names: tuple[str, ...], defaults: Mapping[str, bool]) -> dict[str, bool]:
        raw = self.optional(key)
        value = (self.parse_json(key, raw, dict, "an object") or {}) if raw is not None else {}
        for extra in set(value) - set(names):
            self.problem(f"{key}.{excerpt(str(extra))}", f"unknown key{suggest(str(extra), names)}; remove it")
        for name in names:
            if not isinstance(value.get(name, defaults[name]), bool):
                self.problem(f"{key}.{name}", f"'{excerpt(str(value[name]))}' is not true or false")
        return {name: value.get(name, defaults[name]) is True for name in names}


def suggest(word: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if not close:
        lowered = {k.lower(): k for k in known}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f" (did you mean '{close[0]}'?)" if close else ""


def https_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return "is not an https URL; use https://..."
    if parts.fragment or "#" in url:
        return "has a fragment (#...), which Entra ID refuses; remove it"
    if len(url) > 256:
        return "is longer than 256 characters, which Entra ID refuses; shorten it"
    return None


def redirect_uri_problem(url: str) -> str | None:
    if refused := sorted(_REDIRECT_URI_REFUSED & set(url)):
        return f"holds {' '.join(refused)}, which Entra ID refuses in a redirect URI; remove or percent-encode it"
    parts = urlsplit(url)
    if parts.scheme == "http":
        if parts.hostname != "localhost" or parts.query or parts.fragment or parts.username:
            return "is plain http on a host other than localhost; use https://... or http://localhost[:port][/path]"
        return None
    return https_problem(url)
