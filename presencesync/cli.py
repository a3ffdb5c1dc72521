"""`python -m presencesync ...`: the commands, as thin shells over the modules that do the work.

User errors end as one line on stderr and a non-zero exit status, never as a traceback. Each command
imports what it needs (msal, jinja2, the Pulumi SDK) when it runs, so the others start without them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from presencesync import fleet, sync_users
from presencesync.config import ConfigError, Settings
from presencesync.config_keys import DEFAULTS, PROFILES
from presencesync.errors import PresenceSyncError, missing_dependency
from presencesync.fleet import DEFAULT_PARALLEL
from presencesync.project_config import stack_settings
from presencesync.stack_file import read_stack_config, secrets_provider_changes, stack_path
from presencesync.stack_tenant import StackDeployer, stack_deployer, stack_file_deployer
from presencesync.untrusted import printable

EXIT_OK, EXIT_ERROR, EXIT_DRIFT, EXIT_USAGE = 0, 1, 2, 64  # 2 means drift to the pipelines: not for usage
EXIT_NO_PASSWORD = 3  # check: the sync user's password is the stack's only problem (scripts/up.sh sets it)
EXIT_BROKEN_PIPE = 141  # what a shell reports for a command its pipe's reader stopped (128 + SIGPIPE)


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error, which the pipelines would read as drift."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"error: {message}\n")


class UserError(PresenceSyncError):
    """A wrong argument or input file; the message is the whole report."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except PresenceSyncError as error:
        for line in error.lines:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `check ... | head`: the reader has what it wanted; stop quietly, as a pipe does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail again
        return EXIT_BROKEN_PIPE
    except ModuleNotFoundError as missing:
        print(missing_dependency(missing.name), file=sys.stderr)
        return EXIT_ERROR
    except Exception as bug:  # not the user's to fix: one line, or the whole traceback with --debug
        if args.debug:
            raise
        print(f"error: a bug in presencesync ({type(bug).__name__}: {(str(bug).splitlines() or [''])[0]}); "
              "rerun with --debug for the traceback and report it", file=sys.stderr)
        return EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m presencesync", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="validate a stack's config offline and list its resources")
    _stack_source(check, required=True)
    check.add_argument("--policy-pack-config", metavar="FILE", type=Path,
                       help="the policy pack's config, as pulumi preview --policy-pack-config takes it")
    check.add_argument("--against", metavar="FILE", type=Path,
                       help="the same stack file on the base branch: call out a changed secretsprovider or "
                            "encryptedkey (for pull-request checks)")
    check.set_defaults(run=_check)

    born = commands.add_parser("new-tenant", help="write a new customer tenant's stack file and say what comes next")
    born.add_argument("name", metavar="NAME", help="the stack's name, e.g. customer-a (file Pulumi.NAME.yaml)")
    born.add_argument("--tenant-id", metavar="GUID", required=True, help="the customer's directory (tenant) ID")
    born.add_argument("--profile", choices=PROFILES, required=True, help="the presence API (see README)")
    born.add_argument("--sync-user", metavar="UPN", required=True, help="the sync user's sign-in name")
    born.add_argument("--create-sync-user", action="store_true", help="create the sync user (else it exists)")
    born.add_argument("--licence-sku", metavar="GUID", help="with --create-sync-user: the licence's SKU ID")
    born.add_argument("--usage-location", metavar="CC", help="with --create-sync-user: two-letter country code")
    expiry = born.add_mutually_exclusive_group()
    expiry.add_argument("--secret-expiry", choices=("1y", "2y"), help="one client secret's lifetime (default 2y)")
    expiry.add_argument("--rotate-days", metavar="N", type=_positive,
                        help="rotate the client secret every N days (31 to 365), on days spread by the tenant ID")
    born.add_argument("--project-dir", metavar="DIR", type=Path, default=Path.cwd(),
                      help="where Pulumi.yaml and the stack files are (default: current directory)")
    born.set_defaults(run=_new_tenant)

    provider = commands.add_parser("secrets-provider", help="print the secrets provider a new stack is created "
                                   "with (the one the other stack files use; nothing for the backend's default)")
    provider.add_argument("--stack", metavar="NAME", required=True, help="the new stack's name")
    provider.add_argument("--project-dir", metavar="DIR", type=Path, default=Path.cwd(),
                          help="where Pulumi.yaml and the stack files are (default: current directory)")
    provider.set_defaults(run=_secrets_provider)

    show = commands.add_parser("manifest", help="print requiredResourceAccess.json (or the az CLI script)")
    _stack_source(show, required=False)
    show.add_argument("--az-script", action="store_true",
                      help="print the az CLI commands for the whole manual guide instead")
    show.add_argument("--profile", choices=PROFILES, help="without a stack: the profile (default ucwa)")
    show.add_argument("--output", metavar="FILE", type=Path,
                      help="write to FILE, only once everything is resolved (default: print it)")
    show.set_defaults(run=_manifest)

    after = commands.add_parser("post-deploy", help="grant consent if asked, prove sign-in, hand over to Novus")
    _stack_source(after, required=True)
    after.add_argument("--outputs", metavar="FILE", type=Path,
                       help="stack outputs as JSON (default: pulumi stack output --json --show-secrets)")
    after.add_argument("--output", metavar="FILE", type=Path,
                       help="where to write the Novus values (default: novus-config.<stack>.json)")
    after.add_argument("--show-secrets", action="store_true", help="print the secrets instead of ********")
    after.add_argument("--check", action="store_true",
                       help="read-only drift check: exit 2 with one line per drifted item")
    after.set_defaults(run=_post_deploy)

    first = commands.add_parser("preflight", help="read what the tenant will refuse, before pulumi up (read-only)")
    _stack_source(first, required=True)
    first.add_argument("--outputs", metavar="FILE", type=Path,
                       help="stack outputs as JSON, to tell the stack's own application (default: pulumi stack "
                            "output --json)")
    first.set_defaults(run=_preflight)

    adopt_cmd = commands.add_parser("adopt", help="write a pulumi import file for a registration made by hand")
    _stack_source(adopt_cmd, required=True)
    adopt_cmd.add_argument("--display-name", metavar="NAME",
                           help="the application's display name (default: the stack's displayName)")
    adopt_cmd.add_argument("--output", metavar="FILE", type=Path, help="default: adopt.<stack>.json")
    adopt_cmd.set_defaults(run=_adopt)

    fleet_cmd = commands.add_parser("fleet", help="run every tenant's stack N at a time (Automation API)")
    fleet_actions = fleet_cmd.add_subparsers(required=True, metavar="ACTION")
    for action, text in (("preview", "pulumi preview per stack"), ("up", "pulumi up per stack"),
                         ("drift", "pulumi preview --refresh --expect-no-changes, then post-deploy --check")):
        run = fleet_actions.add_parser(action, help=text)
        run.add_argument("--parallel", metavar="N", type=_positive, default=DEFAULT_PARALLEL,
                         help=f"tenants at a time (default {DEFAULT_PARALLEL})")
        run.add_argument("--stacks", metavar="GLOB", default=os.environ.get("PRESENCESYNC_STACKS") or "*",
                         help="only stacks whose names match (default $PRESENCESYNC_STACKS, or *)")
        run.add_argument("--report", metavar="FILE", type=Path, help="JSON report (default fleet-<action>.json)")
        run.add_argument("--html", metavar="FILE", type=Path, help="also write the fleet health page")
        run.add_argument("--project-dir", metavar="DIR", type=Path, default=Path.cwd(),
                         help="where Pulumi.yaml and the stack files are (default: current directory)")
        if action == "drift":
            _teams_options(run)
        run.set_defaults(run=_fleet, action=action)
    page = fleet_actions.add_parser("report", help="render the fleet health page from fleet reports")
    page.add_argument("reports", metavar="REPORT", type=Path, nargs="+", help="JSON written by fleet --report")
    page.add_argument("--html", metavar="FILE", type=Path, help="where to write the page")
    page.add_argument("--summary", metavar="FILE", type=Path,
                      help="also append a Markdown table of the tenants (e.g. to $GITHUB_STEP_SUMMARY)")
    _teams_options(page)
    page.add_argument("--github-issue", action="store_true",
                      help="keep the issue 'presencesync: tenants that need attention' with gh (GitHub Actions)")
    page.set_defaults(run=_fleet_report)

    plan = commands.add_parser("bootstrap-plan", help="the Graph permissions and consenting tenants "
                               "scripts/bootstrap.sh sets up, from the stacks' profiles")
    plan.add_argument("--stacks", metavar="GLOB", default=os.environ.get("PRESENCESYNC_STACKS") or "*",
                      help="read the profiles and tenants of these stacks (default $PRESENCESYNC_STACKS, or *)")
    plan.add_argument("--profiles", metavar="LIST", help="instead of the stacks: ucwa, graph or ucwa,graph")
    plan.add_argument("--creates-sync-users", action="store_true",
                      help="with --profiles: a stack will create its sync user (syncUser.create: true)")
    plan.add_argument("--project-dir", metavar="DIR", type=Path, default=Path.cwd(),
                      help="where Pulumi.yaml and the stack files are (default: current directory)")
    plan.set_defaults(run=_bootstrap_plan)
    return parser


def _teams_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--teams-webhook-env", metavar="NAME",
                         help="post a card to the Teams Workflows webhook whose URL is in environment variable NAME")
    command.add_argument("--teams-always", action="store_true",
                         help="post every run, not only when a tenant needs a person")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of 1 or more")
    return int(text)


def _stack_source(command: argparse.ArgumentParser, *, required: bool) -> None:
    source = command.add_mutually_exclusive_group(required=required)
    source.add_argument("--stack", metavar="NAME", help="read Pulumi.NAME.yaml in the project directory")
    source.add_argument("--config", metavar="FILE", type=Path, help="read a stack config file")
    command.add_argument("--project-dir", metavar="DIR", type=Path, default=Path.cwd(),
                         help="where Pulumi.yaml and the stack files are (default: current directory)")


def _settings(args: argparse.Namespace) -> tuple[Settings, dict[str, str], frozenset[str]]:
    return stack_settings(_stack_file(args), _stack_name(args), datetime.now(UTC))


def _stack_file(args: argparse.Namespace) -> Path:
    return Path(args.config if args.config else stack_path(args.stack, args.project_dir))


def _stack_deployer(stack: str, settings: Settings) -> StackDeployer:
    """The stack's tenant and deployer credentials, saying on stderr what named another tenant."""
    deployer = stack_deployer(stack, settings)
    for line in deployer.set_aside:
        print(f"note: {line}", file=sys.stderr)
    return deployer


def _stack_name(args: argparse.Namespace) -> str:
    return str(args.stack or args.config.stem.removeprefix("Pulumi."))


def _check(args: argparse.Namespace) -> int:
    if not (args.stack and any(c in args.stack for c in "*?[")):
        from presencesync.new_tenant import PASSWORD_KEY, besides_password

        try:
            return _check_one(args)
        except ConfigError as error:
            # Exit 3 is for a stack with no password at all, as new-tenant writes it; one that is there but
            # unusable (plain text, a copied ciphertext) is an error like any other.
            if besides_password(error.problems) or PASSWORD_KEY in read_stack_config(_stack_file(args)).values:
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
        for line in secrets_provider_changes(args.against, _stack_file(args)):
            print(f"warning: {line}", file=sys.stderr)
    settings, values, encrypted = _settings(args)
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


def _new_tenant(args: argparse.Namespace) -> int:
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


def _secrets_provider(args: argparse.Namespace) -> int:
    from presencesync.new_tenant import secrets_provider

    found = secrets_provider(args.project_dir, args.stack)
    if found:
        print(found)
    return EXIT_OK


def _manifest(args: argparse.Namespace) -> int:
    from presencesync import manifest

    if args.az_script:
        if not (args.stack or args.config):
            raise UserError("--az-script needs the stack's settings; pass --stack NAME or --config FILE")
        settings, _, _ = _settings(args)
        env = _stack_deployer(_stack_name(args), settings).env
        text = manifest.az_script(settings, manifest.resolve_permissions(settings.profile, settings.environment, env))
    else:
        profile, environment, env = args.profile or DEFAULTS["profile"], "public", dict(os.environ)
        if args.stack or args.config:
            if args.profile:
                raise UserError("--profile comes from the stack's config with --stack or --config; drop --profile")
            settings, _, _ = _settings(args)
            profile, environment = settings.profile, settings.environment
            env = _stack_deployer(_stack_name(args), settings).env
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


def _post_deploy(args: argparse.Namespace) -> int:
    from presencesync import handover, postdeploy
    from presencesync.stack_outputs import Deployed

    settings, _, _ = _settings(args)
    name = _stack_name(args)
    target = args.output or args.project_dir / f"novus-config.{name}.json"
    if not args.check:  # checked before anything is signed in to or written
        if target.is_dir():
            raise UserError(f"--output {target}: is a directory; give a file path, e.g. {target / 'novus.json'}")
        if not target.parent.is_dir():
            raise UserError(f"--output {target}: the directory {target.parent} does not exist; create it or "
                            "choose another path")
    deployer = _stack_deployer(name, settings)
    deployed = Deployed.from_outputs(_stack_outputs(args, name))
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


def _preflight(args: argparse.Namespace) -> int:
    from presencesync import preflight

    settings, _, _ = _settings(args)
    name = _stack_name(args)
    try:
        outputs = _stack_outputs(args, name, show_secrets=False)
        own = preflight.OwnApplication(True, outputs.get("applicationObjectId") or None)
    except UserError as why:  # e.g. no pulumi CLI yet: the application of the same name may be the stack's own
        print(f"preflight: the stack's outputs cannot be read ({why})", file=sys.stderr)
        own = preflight.OwnApplication(False)
    env = _stack_deployer(name, settings).env  # signs in to the stack's own tenant, as post-deploy does
    findings, round_trips = preflight.run(settings, own, now=datetime.now(UTC), env=env)
    for finding in findings:
        print(finding.line(), file=sys.stderr)
    if any(f.stop for f in findings):
        return EXIT_ERROR
    print(f"preflight: nothing in the tenant refuses stack {name} ({len(findings)} warning(s); {round_trips} Graph "
          "round trip(s))", file=sys.stderr)
    return EXIT_OK


def _adopt(args: argparse.Namespace) -> int:
    from presencesync import adopt
    from presencesync.clouds import endpoints_for
    from presencesync.graph import Deadline, Graph
    from presencesync.stack_tenant import deployer_token_source

    settings, _, _ = _settings(args)
    name = _stack_name(args)
    deployer = _stack_deployer(name, settings)
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


def _fleet(args: argparse.Namespace) -> int:
    from presencesync import fleet_page

    project = args.project_dir.resolve()
    if not (project / "Pulumi.yaml").is_file():
        raise UserError(f"--project-dir {project}: no Pulumi.yaml there; run from the project directory")
    _check_teams_options(args)
    fleet.require_cli()
    stacks = fleet.find_stacks(project, args.stacks)
    if not stacks:
        raise UserError(f"--stacks {args.stacks}: no Pulumi.<stack>.yaml in {project} matches")
    for stack in stacks:  # a stack that names no tenant fails in its own run
        with contextlib.suppress(PresenceSyncError):
            for line in stack_file_deployer(stack, project).set_aside:
                print(f"fleet: {line}", file=sys.stderr)
    policy = project / "policy"
    runner = fleet.stack_runner(args.action, project, policy if args.action != "drift" and policy.is_dir() else None)
    report = args.report or project / f"fleet-{args.action}.json"
    started = time.monotonic()
    results = fleet.run_fleet(stacks, runner, parallel=args.parallel, order=fleet.slowest_first(stacks, report),
                              say=lambda line: print(line, file=sys.stderr, flush=True))
    fleet.write_report(report, args.action, args.parallel, results, time.monotonic() - started)
    print("\n".join(fleet.summary_table(results)))
    print(f"fleet: report in {report}", file=sys.stderr)
    written = fleet_page.load_reports([report])
    notes = _notify(args, written)
    if args.html:
        fleet_page.write_page(written, args.html, notes=notes)
        print(f"fleet: page in {args.html}", file=sys.stderr)
    if any(r.result == fleet.FAILED for r in results):
        return EXIT_ERROR
    return EXIT_DRIFT if any(r.result == fleet.DRIFTED for r in results) else EXIT_OK


def _fleet_report(args: argparse.Namespace) -> int:
    from presencesync import fleet_page

    if not (args.html or args.summary or args.github_issue or getattr(args, "teams_webhook_env", None)):
        raise UserError("fleet report: nothing to write; give --html FILE, --summary FILE or both "
                        "(or a notification)")
    _check_teams_options(args)
    report = fleet_page.load_reports(args.reports)
    notes = _notify(args, report)
    today = datetime.now(UTC).date()
    if args.github_issue:
        from presencesync import notify

        notes += notify.keep_github_issue(report, today, fleet_page.markdown_summary(report, today), say=_say)
    if args.html:
        fleet_page.write_page(report, args.html, notes=notes)
        print(f"fleet: page in {args.html}", file=sys.stderr)
    if args.summary:
        with args.summary.open("a", encoding="utf-8") as summary:
            summary.write(fleet_page.markdown_summary(report, today))
    return EXIT_OK


def _notify(args: argparse.Namespace, report: dict[str, Any]) -> list[str]:
    """The Teams post, if asked for; its failure is a line and a page note, never the exit code."""
    if not getattr(args, "teams_webhook_env", None):
        return []
    from presencesync import notify

    return notify.post_to_teams(report, datetime.now(UTC).date(), args.teams_webhook_env, always=args.teams_always,
                                say=_say)


def _check_teams_options(args: argparse.Namespace) -> None:
    """A webhook variable that is unset or not a URL is bad input: one line before any tenant runs."""
    if getattr(args, "teams_webhook_env", None):
        from presencesync import teams_webhook

        teams_webhook.webhook_url(args.teams_webhook_env, os.environ)
        teams_webhook.deadline_seconds(os.environ)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _bootstrap_plan(args: argparse.Namespace) -> int:
    from presencesync import bootstrap_plan

    if args.profiles is not None:
        plan = bootstrap_plan.from_arguments(args.profiles, creates_sync_users=args.creates_sync_users)
    elif args.creates_sync_users:
        raise UserError("--creates-sync-users goes with --profiles; without it the stacks' syncUser.create decides")
    else:
        plan = bootstrap_plan.from_stacks(args.project_dir, fleet.find_stacks(args.project_dir, args.stacks))
    print("\n".join(bootstrap_plan.lines(plan)))
    return EXIT_OK


def _stack_outputs(args: argparse.Namespace, stack: str, show_secrets: bool = True) -> dict[str, Any]:
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


def _show(value: Any) -> str:
    from presencesync.offline_plan import SecretValue

    if isinstance(value, SecretValue):
        return "[secret]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{printable(str(k))}: {_show(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return json.dumps(value) if not isinstance(value, str) else printable(value)  # one line, no CI command
