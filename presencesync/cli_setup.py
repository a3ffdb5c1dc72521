"""The set-up commands: a new tenant's stack file (new-tenant), the secrets provider a new stack is created
with, and what the one-time bootstrap grants (bootstrap-plan)."""

from __future__ import annotations

import argparse
import sys

from presencesync import fleet
from presencesync.errors import UserError
from presencesync.exit_status import EXIT_ERROR, EXIT_OK


def new_tenant_command(args: argparse.Namespace) -> int:
    from presencesync import new_tenant

    tenant = new_tenant.NewTenant(
        stack=args.name, tenant_id=args.tenant_id, profile=args.profile, sync_user=args.sync_user,
        create_sync_user=args.create_sync_user, licence_sku=args.licence_sku, usage_location=args.usage_location,
        secret_expiry=args.secret_expiry, rotate_days=args.rotate_days)
    if not (args.project_dir / "Pulumi.yaml").is_file():
        raise UserError(f"--project-dir {args.project_dir}: no Pulumi.yaml there; run from the project directory")
    verdict = new_tenant.create(tenant, args.project_dir, say=lambda line: print(f"new-tenant: {line}"),
                                interactive=sys.stdin.isatty())
    for line in verdict:
        print(f"check: {line}")
    if not verdict:
        print(f"check: the stack's config is complete; see its resources with python -m presencesync check "
              f"--stack {args.name}, then deploy with pulumi up --stack {args.name}")
    return EXIT_ERROR if new_tenant.besides_password(verdict) else EXIT_OK


def secrets_provider_command(args: argparse.Namespace) -> int:
    from presencesync.new_tenant import secrets_provider

    found = secrets_provider(args.project_dir, args.stack)
    if found:
        print(found)
    return EXIT_OK


def bootstrap_plan_command(args: argparse.Namespace) -> int:
    from presencesync import bootstrap_plan

    if args.profiles is not None:
        plan = bootstrap_plan.from_arguments(args.profiles, creates_sync_users=args.creates_sync_users)
    elif args.creates_sync_users:
        raise UserError("--creates-sync-users goes with --profiles; without it the stacks' syncUser.create decides")
    else:
        plan = bootstrap_plan.from_stacks(args.project_dir, fleet.find_stacks(args.project_dir, args.stacks))
    print("\n".join(bootstrap_plan.lines(plan)))
    return EXIT_OK
