"""`check`: a stack's config validated offline, its policies run and its resources listed; a glob checks
every matching stack."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from presencesync import fleet, sync_users
from presencesync.cli_stack import read_settings, stack_file
from presencesync.config import ConfigError
from presencesync.errors import PresenceSyncError, UserError
from presencesync.exit_status import EXIT_ERROR, EXIT_NO_PASSWORD, EXIT_OK
from presencesync.stack_file import read_stack_config, secrets_provider_changes
from presencesync.untrusted import printable


def check_command(args: argparse.Namespace) -> int:
    if not (args.stack and any(c in args.stack for c in "*?[")):
        from presencesync.new_tenant import PASSWORD_KEY, besides_password

        try:
            return _check_one(args)
        except ConfigError as error:
            # Exit 3 is for a stack with no password at all, as new-tenant writes it; one that is there but
            # unusable (plain text, a copied ciphertext) is an error like any other.
            if besides_password(error.problems) or PASSWORD_KEY in read_stack_config(stack_file(args)).values:
                raise
            for line in error.problems:
                print(f"error: {line}", file=sys.stderr)
            return EXIT_NO_PASSWORD
    # A glob (--stack 'customer-*'): every matching stack, each with its own verdict.
    if args.against:
        raise UserError("--against compares one stack file; give --stack NAME, not a pattern")
    stacks = fleet.find_stacks(args.project_dir, args.stack)
    if not stacks:
        raise UserError(f"--stack {args.stack}: no Pulumi.<stack>.yaml in {args.project_dir} matches")
    failed = []
    for stack in stacks:
        print(f"== {stack}")
        try:
            if _check_one(argparse.Namespace(**{**vars(args), "stack": stack})) != EXIT_OK:
                failed.append(stack)
        except PresenceSyncError as error:
            failed.append(stack)
            for line in error.lines:
                print(f"error: {stack}: {line}", file=sys.stderr)
    print(f"check: {len(stacks) - len(failed)} of {len(stacks)} stack(s) pass"
          f"{'; failing: ' + ', '.join(failed) if failed else ''}", file=sys.stderr)
    return EXIT_ERROR if failed else EXIT_OK


def _check_one(args: argparse.Namespace) -> int:
    from presencesync import offline_plan  # imports the Pulumi SDK: only where needed
    from presencesync.policy_check import config_problems, run_policies  # the policy SDK: only where needed

    if args.against:  # before the config's verdict, so a failing check still shows it
        for line in secrets_provider_changes(args.against, stack_file(args)):
            print(f"warning: {line}", file=sys.stderr)
    settings, values, encrypted = read_settings(args)
    policy_config = _policy_config(args.policy_pack_config)
    if problems := config_problems(policy_config):
        raise UserError(f"--policy-pack-config {args.policy_pack_config}: {problems[0]}")
    facts = offline_plan.placeholder_facts(settings)
    plan = offline_plan.run_program(values, facts, secret_keys=tuple(encrypted), stack=args.stack or "check")
    violations = run_policies(plan, facts.deployer_object_id, policy_config, values)
    for v in violations:
        print(f"{'error' if v.mandatory else 'warning'}: policy {v.policy} ({v.resource}): {v.message}",
              file=sys.stderr)
    if any(v.mandatory for v in violations):
        return EXIT_ERROR
    print(f"{len(plan.resources)} resources for profile {settings.profile}, consent {settings.consent}:")
    for resource in plan.resources:
        flags = "".join([" [protected]" if resource.protect else "",
                         f" [ignores changes to {', '.join(resource.ignore_changes)}]"
                         if resource.ignore_changes else ""])
        print(f"  {resource.type.rsplit(':', 1)[-1]} {resource.name}{flags}")
        for key, value in sorted(resource.inputs.items()):
            print(f"      {key}: {_show(value)}")
    print("reads from the tenant: " + ", ".join(
        f"{token.rsplit(':', 1)[-1]}({', '.join(f'{k}={_show(v)}' for k, v in sorted(a.items()))})"
        for token, a in plan.invokes))
    print("outputs: " + ", ".join(sorted(plan.outputs)))
    print(sync_users.sizing_line(settings.profile, settings.watched_users, len(settings.sync_users)))
    return EXIT_OK


def _policy_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"--policy-pack-config {path}: cannot be read as JSON ({error})") from None
    if not isinstance(config, dict) or not all(isinstance(v, dict) for v in config.values()):
        raise UserError(f"--policy-pack-config {path}: must map policy names to objects, e.g. "
                        '{"single-tenant-audience": {"allowMultiTenant": true}}')
    return config


def _show(value: Any) -> str:
    from presencesync.offline_plan import SecretValue

    if isinstance(value, SecretValue):
        return "[secret]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{printable(str(k))}: {_show(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return json.dumps(value) if not isinstance(value, str) else printable(value)  # one line, no CI command
