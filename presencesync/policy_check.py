"""The policy pack's policies run on an offline plan, as `pulumi preview --policy-pack policy` runs them
on the registrations (one resource at a time, camelCase inputs, secrets as plain values): so `check`
passing means the pack will not refuse the stack."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs

from presencesync import policies
from presencesync.offline_plan import Plan, SecretValue, placeholder_ids


@dataclass(frozen=True)
class Violation:
    policy: str
    mandatory: bool
    resource: str
    message: str


def run_policies(plan: Plan, deployer: str, config: Mapping[str, Mapping[str, Any]]) -> list[Violation]:
    """Every violation, by policy; `config` is what --policy-pack-config gives each policy by name."""
    found = []
    for policy in policies.policies(lambda: deployer, placeholder_ids):
        for resource in plan.resources:
            options = PolicyResourceOptions(resource.protect, resource.ignore_changes, None, [],
                                            PolicyCustomTimeouts(0, 0, 0), [])
            args = ResourceValidationArgs(resource.type, _plain(resource.inputs), resource.name, resource.name,
                                          options, None, dict(config.get(policy.name) or {}))
            messages: list[str] = []
            assert policy.validate is not None
            policy.validate(args, lambda message, urn=None, found=messages: found.append(message))  # type: ignore[misc]
            found += [Violation(policy.name, policy.enforcement_level == EnforcementLevel.MANDATORY, resource.name, m)
                      for m in messages]
    return found


def config_problems(config: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Names in a --policy-pack-config that no policy of the pack has: the engine validates each policy's config
    against its schema (pulumi/pulumi pkg/resource/analyzer/config.go, `validatePolicyPackConfig`), which admits
    unknown properties, so a misspelt name or key would be silently ignored."""
    import difflib

    known = {p.name: set((p.config_schema.properties if p.config_schema else {}) or {}) | {"enforcementLevel"}
             for p in policies.policies(lambda: "", placeholder_ids)}
    known["all"] = {"enforcementLevel"}
    problems = []
    for name, values in config.items():
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            problems.append(f"'{name}' is no policy of the pack{f' (did you mean {close[0]!r}?)' if close else ''}")
            continue
        for key in set(values) - known[name]:
            close = difflib.get_close_matches(key, sorted(known[name]), n=1)
            problems.append(f"{name}: '{key}' is not one of its settings ({', '.join(sorted(known[name]))})"
                            f"{f'; did you mean {close[0]!r}?' if close else ''}")
    return problems


def _plain(value: Any) -> Any:
    if isinstance(value, SecretValue):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
