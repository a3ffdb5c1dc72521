"""The PresenceSync policy pack: `pulumi preview --policy-pack policy` (the fleet and the pipelines pass it).

The policies live in presencesync/policies.py; this entry point only builds the pack (its constructor
starts the analyzer server) with the two lookups that need the tenant, made with the deployer's own
credentials: who deploys, and the IDs of the permissions by name.
"""

import functools
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi.runtime
from pulumi_policy import PolicyPack

from presencesync.clouds import endpoints_for
from presencesync.credentials import deployer_object_id
from presencesync.manifest import resolve_permissions
from presencesync.policies import policies


def environment() -> str:
    # The engine hands the pack the stack's config (PULUMI_CONFIG), so the stack's national cloud is
    # known here as the provider knows it; ARM_ENVIRONMENT where the stack sets none.
    return pulumi.runtime.get_config_env().get("azuread:environment") or os.environ.get("ARM_ENVIRONMENT", "public")


@functools.cache
def deployer() -> str:
    # The pack runs beside the program with the same credentials, so their Graph token names the deployer.
    cloud = environment()
    try:
        return deployer_object_id(endpoints_for(cloud))
    except Exception as error:  # the policy reports it; the cloud tells which sign-in was tried
        raise RuntimeError(f"{error} (cloud {cloud})") from None


@functools.cache
def tenant_ids(profile: str) -> dict[tuple[str, str], frozenset[str]]:
    resolved = resolve_permissions(profile, environment())
    return {key: frozenset(ids) for r in resolved
            for key, ids in (((r.api.app_id, "Scope"), r.scope_ids), ((r.api.app_id, "Role"), r.role_ids))}


PolicyPack("presencesync", policies(deployer, tenant_ids))
