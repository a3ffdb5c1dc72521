"""Where a stack runs: the tenant it names (`azuread:tenantId`) and the deployer to sign in there as.

Every command that signs in for a stack (fleet, post-deploy, manifest, adopt, preflight) takes the
environment from here, so it signs in to exactly the stack's tenant, as the azuread provider does under
`pulumi up` (a stack's provider config outranks the ARM_* variables, which are only its defaults). An
`ARM_TENANT_ID`, or the Azure CLI's signed-in default, that names another tenant is set aside, and one
line says so, naming both: a partner's own tenant in the environment never decides where a customer's
stack runs.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from presencesync.config import Settings
from presencesync.config_keys import CLIENT_KEY, TENANT_KEY
from presencesync.errors import PresenceSyncError
from presencesync.stack_file import read_stack_config, stack_path
from presencesync.untrusted import excerpt, is_guid

if TYPE_CHECKING:
    from presencesync.credentials import TokenSource

TENANT_ENV, CLIENT_ENV = "ARM_TENANT_ID", "ARM_CLIENT_ID"


class StackTenantError(PresenceSyncError):
    """A stack that names no tenant (or no deployer app where one is needed); the message says how to set it."""


@dataclass(frozen=True)
class StackDeployer:
    stack: str
    tenant_id: str
    client_id: str | None  # the stack's azuread:clientId, else the environment's ARM_CLIENT_ID
    env: dict[str, str]  # the environment to sign in with: ARM_TENANT_ID is the stack's tenant
    set_aside: tuple[str, ...]  # one line per setting that named another tenant


def stack_deployer(stack: str, settings: Settings, environ: Mapping[str, str] = os.environ) -> StackDeployer:
    """The stack's tenant and deployer credentials, from settings already validated (config.py requires the
    tenant); the function post-deploy, manifest, adopt and preflight call before they sign in."""
    return _deployer(stack, settings.tenant_id, settings.client_id, environ)


def stack_file_deployer(stack: str, project_dir: Path, environ: Mapping[str, str] = os.environ) -> StackDeployer:
    """The same, read straight from `Pulumi.<stack>.yaml` (for fleet and the pipelines, which do not need
    the whole of the stack's settings)."""
    values = read_stack_config(stack_path(stack, project_dir)).values
    tenant_id, client_id = values.get(TENANT_KEY), values.get(CLIENT_KEY)
    fix = f"set the customer's directory (tenant) ID with pulumi config set {TENANT_KEY} <GUID> --stack {stack}"
    if tenant_id is None:
        raise StackTenantError(f"Pulumi.{stack}.yaml: {TENANT_KEY} is missing, so nothing says which tenant the "
                               f"stack runs in; {fix}")
    if not is_guid(tenant_id):
        raise StackTenantError(f"Pulumi.{stack}.yaml: {TENANT_KEY} '{excerpt(tenant_id)}' is not a tenant ID (GUID); "
                               f"{fix}")
    if client_id is not None and not is_guid(client_id):
        raise StackTenantError(f"Pulumi.{stack}.yaml: {CLIENT_KEY} '{excerpt(client_id)}' is not an application "
                               f"(client) ID (GUID); set the deployer app's ID, or remove the key")
    return _deployer(stack, tenant_id, client_id, environ)


def deployer_token_source(deployer: StackDeployer, environment: str) -> TokenSource:
    """The deployer's Microsoft Graph token for the stack's tenant (credentials.py's order of credentials)."""
    from presencesync.clouds import endpoints_for
    from presencesync.credentials import graph_token_source  # msal: only where a command signs in

    return graph_token_source(endpoints_for(environment, deployer.env), deployer.env)


def _deployer(stack: str, tenant_id: str, client_id: str | None, environ: Mapping[str, str]) -> StackDeployer:
    set_aside = []
    named = environ.get(TENANT_ENV)
    if named and named.lower() != tenant_id.lower():
        set_aside.append(f"{stack}: {TENANT_ENV} {excerpt(named)} set aside: the stack runs in its own tenant "
                         f"{tenant_id} ({TENANT_KEY})")
    elif not named and _uses_azure_cli(environ) and (default := _az_default_tenant()) not in (None, tenant_id):
        set_aside.append(f"{stack}: the Azure CLI's default tenant {default} set aside: signing in to the stack's "
                         f"tenant {tenant_id} ({TENANT_KEY})")
    env = {**environ, TENANT_ENV: tenant_id}
    if client_id:
        env[CLIENT_ENV] = client_id
    return StackDeployer(stack, tenant_id, env.get(CLIENT_ENV) or None, env, tuple(set_aside))


def _uses_azure_cli(environ: Mapping[str, str]) -> bool:
    """Whether the deployer's token would come from the Azure CLI (credentials.py's order: no app credential)."""
    has_app = environ.get(CLIENT_ENV) and (environ.get("ARM_CLIENT_SECRET")
                                           or environ.get("ARM_CLIENT_CERTIFICATE_PATH")
                                           or environ.get("ARM_USE_OIDC", "").lower() == "true")
    return not has_app and shutil.which("az") is not None


@functools.cache
def _az_default_tenant() -> str | None:
    """The tenant `az login` made the default, or None where the Azure CLI has no account."""
    try:
        done = subprocess.run(["az", "account", "show", "--query", "tenantId", "--output", "tsv"],
                              capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        return None
    tenant = done.stdout.strip()
    return tenant if done.returncode == 0 and is_guid(tenant) else None
