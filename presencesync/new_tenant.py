"""`new-tenant`: a customer tenant's stack file, born right.

It holds only what differs from Pulumi.yaml's defaults and no ciphertext: the secrets provider the stack
is created with encrypts the sync user's password, so no value is copied from another stack. What follows
(creating the stack on the repository's backend with its secrets provider, setting the password) is a
list of exact commands, which the caller prints or runs.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from presencesync.client_secrets import spread_offset
from presencesync.config_keys import DEFAULT_SECRET_EXPIRY, DEFAULTS, NAMESPACE, TENANT_KEY
from presencesync.errors import PresenceSyncError
from presencesync.go_yaml import parse_yaml
from presencesync.stack_file import StackFileError, read_stack_text, stack_path
from presencesync.stack_names import STACK_NAME
from presencesync.untrusted import excerpt, is_guid

PASSWORD_KEY = f"{NAMESPACE}:syncUserPassword"


class NewTenantError(PresenceSyncError):
    """An argument new-tenant cannot use; the message names it and the fix."""


@dataclass(frozen=True)
class NewTenant:
    stack: str
    tenant_id: str
    profile: str
    sync_user: str
    create_sync_user: bool = False
    licence_sku: str | None = None
    usage_location: str | None = None
    secret_expiry: str | None = None  # 1y or 2y
    rotate_days: int | None = None


def besides_password(problems: list[str]) -> list[str]:
    """check's problems other than the sync user's password: a new stack has none until the stack exists on
    the backend and `pulumi config set --secret` encrypts one, so new-tenant and scripts/up.sh go on past it."""
    return [line for line in problems if not line.startswith(f"{PASSWORD_KEY}:")]


def stack_document(tenant: NewTenant) -> dict[str, Any]:
    """The stack file's content: the tenant, and each setting that is not Pulumi.yaml's default."""
    if not STACK_NAME.fullmatch(tenant.stack):
        raise NewTenantError(f"'{excerpt(tenant.stack)}' is not a stack name: use letters, digits, '-', '_' or '.', "
                             "at most 100 characters (e.g. customer-a)")
    if not is_guid(tenant.tenant_id):
        raise NewTenantError(f"--tenant-id '{excerpt(tenant.tenant_id)}' is not a tenant ID (GUID); find it with "
                             "az account show --query tenantId, or in the Entra admin center's overview")
    if not tenant.create_sync_user and (tenant.licence_sku or tenant.usage_location):
        raise NewTenantError("--licence-sku and --usage-location apply only with --create-sync-user; "
                             "drop them, or add --create-sync-user")
    config: dict[str, Any] = {TENANT_KEY: tenant.tenant_id}
    if tenant.profile != DEFAULTS["profile"]:
        config[f"{NAMESPACE}:profile"] = tenant.profile
    sync_user: dict[str, Any] = {"userPrincipalName": tenant.sync_user}
    if tenant.create_sync_user:
        sync_user["create"] = True
        if tenant.licence_sku:
            sync_user["licenseSkuId"] = tenant.licence_sku
        if tenant.usage_location:
            sync_user["usageLocation"] = tenant.usage_location
    config[f"{NAMESPACE}:syncUser"] = sync_user
    if tenant.secret_expiry and tenant.secret_expiry != DEFAULT_SECRET_EXPIRY:
        config[f"{NAMESPACE}:secretExpiry"] = tenant.secret_expiry
    if tenant.rotate_days is not None:
        config[f"{NAMESPACE}:secretRotationDays"] = tenant.rotate_days
        config[f"{NAMESPACE}:secretRotationOffsetDays"] = spread_offset(tenant.tenant_id, tenant.rotate_days)
    return {"config": config}


def stack_text(tenant: NewTenant, document: dict[str, Any]) -> str:
    return (f"# {tenant.stack}: made by python -m presencesync new-tenant. The sync user's password is set with\n"
            f"#   pulumi config set --secret {PASSWORD_KEY} --stack {tenant.stack}\n"
            + yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True))


def write_stack_file(project_dir: Path, tenant: NewTenant, text: str) -> Path:
    """Write the new stack file; an existing one (or anything else at its path) is never replaced."""
    path = stack_path(tenant.stack, project_dir)
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise NewTenantError(f"{path}: exists already; choose another stack name, or edit that file") from None
    except OSError as error:
        raise NewTenantError(f"{path}: cannot be written ({error.strerror})") from None
    return path


def secrets_provider(project_dir: Path, new_stack: str) -> str | None:
    """The secrets provider the repository's other stacks use (their `secretsprovider:`, the most common
    one), or None where they use the backend's default (passphrase on a file or blob backend, the service
    on Pulumi Cloud), which `pulumi stack init` then picks."""
    found: Counter[str] = Counter()
    for path in sorted(project_dir.glob("Pulumi.*.yaml")):
        if path.name == f"Pulumi.{new_stack}.yaml":
            continue
        try:
            document = parse_yaml(read_stack_text(path))  # never a link out of the project, a device, a bomb
        except (StackFileError, yaml.YAMLError, RecursionError):
            continue
        provider = document.get("secretsprovider") if isinstance(document, dict) else None
        if isinstance(provider, str) and _STACK_FILE_SAFE.fullmatch(provider):
            found[provider] += 1
    return found.most_common(1)[0][0] if found else None


# A secrets provider URL as it may appear in a printed command (azurekeyvault://, awskms://, passphrase...).
_STACK_FILE_SAFE = re.compile(r"[A-Za-z0-9+.-]+(://[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]*)?")


def next_commands(stack: str, provider: str | None) -> list[list[str]]:
    """What makes the stack deployable: create it on the backend with the secrets provider, set the password."""
    init = ["pulumi", "stack", "init", stack, *(["--secrets-provider", provider] if provider else [])]
    return [init, ["pulumi", "config", "set", "--secret", PASSWORD_KEY, "--stack", stack]]


def backend_note(environ: Mapping[str, str]) -> str:
    backend = environ.get("PULUMI_BACKEND_URL")
    return (f"on the backend in PULUMI_BACKEND_URL ({excerpt(backend)})" if backend else
            "on the backend you are logged in to (pulumi login ...; scripts/up.sh uses file://~/.presencesync-state)")


def shown(command: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in command)


def create(tenant: NewTenant, project_dir: Path, *, say: Callable[[str], None], interactive: bool,
           environ: Mapping[str, str] = os.environ) -> list[str]:
    """Write the stack file (after checking it as `check` would, so a bad argument writes nothing), create
    the stack where a logged-in CLI is at hand, and return check's verdict: the lines still to fix."""
    document = stack_document(tenant)
    text = stack_text(tenant, document)
    with tempfile.TemporaryDirectory() as scratch:
        trial = stack_path(tenant.stack, Path(scratch))
        trial.write_text(text, encoding="utf-8")
        unfixed = besides_password(_verdict(trial, tenant.stack))
    if unfixed:
        raise NewTenantError(f"the stack would not pass check: {unfixed[0]}")
    path = write_stack_file(project_dir, tenant, text)
    say(f"wrote {path}")
    commands = next_commands(tenant.stack, secrets_provider(project_dir, tenant.stack))
    if _logged_in_cli(project_dir, environ):
        init, set_password = commands
        done = subprocess.run(init, cwd=project_dir, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise NewTenantError(f"{shown(init)} failed ({excerpt(reason, 200)}); run it yourself, then "
                                 f"{shown(set_password)}")
        say(f"ran {shown(init)}")
        if interactive:  # the CLI prompts for the password itself: it never passes through this process
            subprocess.run(set_password, cwd=project_dir, timeout=3600, check=False)
        else:
            say(f"next: {shown(set_password)}")
    else:
        say(f"next, {backend_note(environ)}:")
        for command in commands:
            say(f"  {shown(command)}")
        say(f"or let scripts/up.sh run both (on a terminal), then the preflight and pulumi up: bash scripts/up.sh "
            f"{tenant.stack}")
    return _verdict(path, tenant.stack)


def _verdict(path: Path, stack: str) -> list[str]:
    from datetime import UTC, datetime

    from presencesync.config import ConfigError
    from presencesync.project_config import stack_settings

    try:
        stack_settings(path, stack, datetime.now(UTC))
    except ConfigError as error:
        return error.problems
    return []


def _logged_in_cli(project_dir: Path, environ: Mapping[str, str]) -> bool:
    """Whether a `pulumi` CLI is on PATH and logged in to a backend (`pulumi whoami` answers)."""
    if shutil.which("pulumi", path=environ.get("PATH")) is None:
        return False
    try:
        done = subprocess.run(["pulumi", "whoami", "--non-interactive"], cwd=project_dir, capture_output=True,
                              text=True, timeout=60, check=False)
    except OSError:
        return False
    return done.returncode == 0
