"""A command's stack: the file and name its --stack or --config names, its validated settings, the deployer
it signs in as (saying what named another tenant) and its outputs."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from presencesync import stack_tenant
from presencesync.config import Settings
from presencesync.errors import UserError
from presencesync.project_config import stack_settings
from presencesync.stack_file import stack_path


def read_settings(args: argparse.Namespace) -> tuple[Settings, dict[str, str], frozenset[str]]:
    return stack_settings(stack_file(args), stack_name(args), datetime.now(UTC))


def stack_file(args: argparse.Namespace) -> Path:
    return Path(args.config if args.config else stack_path(args.stack, args.project_dir))


def stack_deployer(stack: str, settings: Settings) -> stack_tenant.StackDeployer:
    """The stack's tenant and deployer credentials, saying on stderr what named another tenant."""
    deployer = stack_tenant.stack_deployer(stack, settings)
    for line in deployer.set_aside:
        print(f"note: {line}", file=sys.stderr)
    return deployer


def stack_name(args: argparse.Namespace) -> str:
    return str(args.stack or args.config.stem.removeprefix("Pulumi."))


def stack_outputs(args: argparse.Namespace, stack: str, show_secrets: bool = True) -> dict[str, Any]:
    if args.outputs:
        try:
            text = args.outputs.read_text(encoding="utf-8")
        except OSError as error:
            raise UserError(f"--outputs {args.outputs}: cannot be read ({error.strerror})") from None
    else:
        try:
            done = subprocess.run(["pulumi", "stack", "output", "--json", *(["--show-secrets"] * show_secrets),
                                   "--stack", stack],
                                  capture_output=True, text=True, cwd=args.project_dir, check=False, timeout=300)
        except FileNotFoundError:
            raise UserError("the pulumi CLI is not installed; install it, or pass --outputs FILE") from None
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise UserError(f"pulumi stack output failed for stack {stack}: {reason}")
        text = done.stdout
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError:
        raise UserError("the stack outputs are not JSON; pass what pulumi stack output --json prints") from None
    if not isinstance(outputs, dict):
        raise UserError("the stack outputs are not a JSON object; pass what pulumi stack output --json prints")
    return outputs
