"""The commands that read or change one stack's tenant, signed in as its deployer: manifest, preflight,
post-deploy and adopt."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime

from presencesync.cli_stack import read_settings, stack_deployer, stack_name, stack_outputs
from presencesync.config_keys import DEFAULTS
from presencesync.errors import UserError
from presencesync.exit_status import EXIT_DRIFT, EXIT_ERROR, EXIT_OK


def manifest_command(args: argparse.Namespace) -> int:
    from presencesync import manifest

    if args.az_script:
        if not (args.stack or args.config):
            raise UserError("--az-script needs the stack's settings; pass --stack NAME or --config FILE")
        settings, _, _ = read_settings(args)
        env = stack_deployer(stack_name(args), settings).env
        text = manifest.az_script(settings, manifest.resolve_permissions(settings.profile, settings.environment, env))
    else:
        profile, environment, env = args.profile or DEFAULTS["profile"], "public", dict(os.environ)
        if args.stack or args.config:
            if args.profile:
                raise UserError("--profile comes from the stack's config with --stack or --config; drop --profile")
            settings, _, _ = read_settings(args)
            profile, environment = settings.profile, settings.environment
            env = stack_deployer(stack_name(args), settings).env
        text = json.dumps(manifest.required_resource_access(
            manifest.resolve_permissions(profile, environment, env)), indent=2)
    if args.output is None:
        print(text)
        return EXIT_OK
    # Written whole or not at all: a failed lookup must not leave an empty script that "succeeds" when run.
    scratch = args.output.with_name(f".{args.output.name}.{os.getpid()}.tmp")
    try:
        with os.fdopen(os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700 if args.az_script else 0o600),
                       "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(scratch, args.output)
    except OSError as error:
        scratch.unlink(missing_ok=True)
        raise UserError(f"--output {args.output}: cannot be written ({error.strerror})") from None
    print(f"manifest: wrote {args.output}", file=sys.stderr)
    return EXIT_OK


def post_deploy_command(args: argparse.Namespace) -> int:
    from presencesync import handover, postdeploy
    from presencesync.stack_outputs import Deployed

    settings, _, _ = read_settings(args)
    name = stack_name(args)
    target = args.output or args.project_dir / f"novus-config.{name}.json"
    if not args.check:  # checked before anything is signed in to or written
        if target.is_dir():
            raise UserError(f"--output {target}: is a directory; give a file path, e.g. {target / 'novus.json'}")
        if not target.parent.is_dir():
            raise UserError(f"--output {target}: the directory {target.parent} does not exist; create it or "
                            "choose another path")
    deployer = stack_deployer(name, settings)
    deployed = Deployed.from_outputs(stack_outputs(args, name))
    if deployed.directory_tenant_id.lower() != settings.tenant_id.lower():
        raise UserError(f"the stack's outputs are from tenant {deployed.directory_tenant_id}, but azuread:tenantId "
                        f"is {settings.tenant_id}; pass the outputs of this stack, or correct azuread:tenantId")
    drift = postdeploy.post_deploy(settings, deployed, check=args.check, now=datetime.now(UTC),
                                   say=lambda line: print(f"post-deploy: {line}", file=sys.stderr), env=deployer.env)
    for line in drift:
        print(f"{'drift' if args.check else 'error'}: {line}", file=sys.stderr)
    if args.check:
        return EXIT_DRIFT if drift else EXIT_OK
    if drift:
        return EXIT_ERROR
    if notice := handover.secret_change_notice(target, deployed):
        print(f"post-deploy: {notice}", file=sys.stderr)
    handover.write_handover(target, deployed)
    print("\n".join(handover.handover_table(deployed, show_secrets=args.show_secrets)))
    print(f"post-deploy: wrote {target} (owner-only); enter these on Novus's presence provider "
          "configuration page", file=sys.stderr)
    return EXIT_OK


def preflight_command(args: argparse.Namespace) -> int:
    from presencesync import preflight

    settings, _, _ = read_settings(args)
    name = stack_name(args)
    try:
        outputs = stack_outputs(args, name, show_secrets=False)
        own = preflight.OwnApplication(True, outputs.get("applicationObjectId") or None)
    except UserError as why:  # e.g. no pulumi CLI yet: the application of the same name may be the stack's own
        print(f"preflight: the stack's outputs cannot be read ({why})", file=sys.stderr)
        own = preflight.OwnApplication(False)
    env = stack_deployer(name, settings).env  # signs in to the stack's own tenant, as post-deploy does
    findings, round_trips = preflight.run(settings, own, now=datetime.now(UTC), env=env)
    for finding in findings:
        print(finding.line(), file=sys.stderr)
    if any(f.stop for f in findings):
        return EXIT_ERROR
    print(f"preflight: nothing in the tenant refuses stack {name} ({len(findings)} warning(s); {round_trips} Graph "
          "round trip(s))", file=sys.stderr)
    return EXIT_OK


def adopt_command(args: argparse.Namespace) -> int:
    from presencesync import adopt
    from presencesync.clouds import endpoints_for
    from presencesync.graph import Deadline, Graph
    from presencesync.stack_tenant import deployer_token_source

    settings, _, _ = read_settings(args)
    name = stack_name(args)
    deployer = stack_deployer(name, settings)
    endpoints = endpoints_for(settings.environment, deployer.env)
    token = deployer_token_source(deployer, settings.environment).token
    graph = Graph(endpoints.graph, token, Deadline(adopt.LOOKUP_SECONDS))
    found = adopt.find_registration(graph, settings, name, args.display_name or settings.display_name)
    target = args.output or args.project_dir / f"adopt.{name}.json"
    target.write_text(json.dumps(found.import_file, indent=2) + "\n", encoding="utf-8")
    for note in found.notes:
        print(f"adopt: {note}", file=sys.stderr)
    print(f"adopt: wrote {target} ({len(found.import_file['resources']) - 1} resources); import them with:",
          file=sys.stderr)
    print(adopt.import_command(str(target), name, settings.protect))
    return EXIT_OK
