"""`python -m presencesync ...`: the commands, as thin shells over the modules that do the work.

User errors end as one line on stderr and a non-zero exit status, never as a traceback. Each command
imports what it needs (msal, jinja2, the Pulumi SDK) when it runs, so the others start without them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from presencesync import cli_check, cli_fleet, cli_setup, cli_tenant
from presencesync.config_keys import PROFILES
from presencesync.errors import PresenceSyncError, missing_dependency
from presencesync.exit_status import EXIT_BROKEN_PIPE, EXIT_ERROR, EXIT_USAGE
from presencesync.fleet import DEFAULT_PARALLEL


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error, which the pipelines would read as drift."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"error: {message}\n")


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
    check.set_defaults(run=cli_check.check_command)

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
    born.set_defaults(run=cli_setup.new_tenant_command)

    provider = commands.add_parser("secrets-provider", help="print the secrets provider a new stack is created "
                                   "with (the one the other stack files use; nothing for the backend's default)")
    provider.add_argument("--stack", metavar="NAME", required=True, help="the new stack's name")
    provider.add_argument("--project-dir", metavar="DIR", type=Path, default=Path.cwd(),
                          help="where Pulumi.yaml and the stack files are (default: current directory)")
    provider.set_defaults(run=cli_setup.secrets_provider_command)

    show = commands.add_parser("manifest", help="print requiredResourceAccess.json (or the az CLI script)")
    _stack_source(show, required=False)
    show.add_argument("--az-script", action="store_true",
                      help="print the az CLI commands for the whole manual guide instead")
    show.add_argument("--profile", choices=PROFILES, help="without a stack: the profile (default ucwa)")
    show.add_argument("--output", metavar="FILE", type=Path,
                      help="write to FILE, only once everything is resolved (default: print it)")
    show.set_defaults(run=cli_tenant.manifest_command)

    after = commands.add_parser("post-deploy", help="grant consent if asked, prove sign-in, hand over to Novus")
    _stack_source(after, required=True)
    after.add_argument("--outputs", metavar="FILE", type=Path,
                       help="stack outputs as JSON (default: pulumi stack output --json --show-secrets)")
    after.add_argument("--output", metavar="FILE", type=Path,
                       help="where to write the Novus values (default: novus-config.<stack>.json)")
    after.add_argument("--show-secrets", action="store_true", help="print the secrets instead of ********")
    after.add_argument("--check", action="store_true",
                       help="read-only drift check: exit 2 with one line per drifted item")
    after.set_defaults(run=cli_tenant.post_deploy_command)

    first = commands.add_parser("preflight", help="read what the tenant will refuse, before pulumi up (read-only)")
    _stack_source(first, required=True)
    first.add_argument("--outputs", metavar="FILE", type=Path,
                       help="stack outputs as JSON, to tell the stack's own application (default: pulumi stack "
                            "output --json)")
    first.set_defaults(run=cli_tenant.preflight_command)

    adopt_cmd = commands.add_parser("adopt", help="write a pulumi import file for a registration made by hand")
    _stack_source(adopt_cmd, required=True)
    adopt_cmd.add_argument("--display-name", metavar="NAME",
                           help="the application's display name (default: the stack's displayName)")
    adopt_cmd.add_argument("--output", metavar="FILE", type=Path, help="default: adopt.<stack>.json")
    adopt_cmd.set_defaults(run=cli_tenant.adopt_command)

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
        run.set_defaults(run=cli_fleet.fleet_command, action=action)
    page = fleet_actions.add_parser("report", help="render the fleet health page from fleet reports")
    page.add_argument("reports", metavar="REPORT", type=Path, nargs="+", help="JSON written by fleet --report")
    page.add_argument("--html", metavar="FILE", type=Path, help="where to write the page")
    page.add_argument("--summary", metavar="FILE", type=Path,
                      help="also append a Markdown table of the tenants (e.g. to $GITHUB_STEP_SUMMARY)")
    _teams_options(page)
    page.add_argument("--github-issue", action="store_true",
                      help="keep the issue 'presencesync: tenants that need attention' with gh (GitHub Actions)")
    page.set_defaults(run=cli_fleet.fleet_report_command)

    plan = commands.add_parser("bootstrap-plan", help="the Graph permissions and consenting tenants "
                               "scripts/bootstrap.sh sets up, from the stacks' profiles")
    plan.add_argument("--stacks", metavar="GLOB", default=os.environ.get("PRESENCESYNC_STACKS") or "*",
                      help="read the profiles and tenants of these stacks (default $PRESENCESYNC_STACKS, or *)")
    plan.add_argument("--profiles", metavar="LIST", help="instead of the stacks: ucwa, graph or ucwa,graph")
    plan.add_argument("--creates-sync-users", action="store_true",
                      help="with --profiles: a stack will create its sync user (syncUser.create: true)")
    plan.add_argument("--project-dir", metavar="DIR", type=Path, default=Path.cwd(),
                      help="where Pulumi.yaml and the stack files are (default: current directory)")
    plan.set_defaults(run=cli_setup.bootstrap_plan_command)
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
