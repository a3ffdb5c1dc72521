"""`fleet preview|up|drift` and `fleet report`: every tenant's stack N at a time, the report, the health
page and the notifications."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from presencesync import fleet
from presencesync.errors import PresenceSyncError, UserError
from presencesync.exit_status import EXIT_DRIFT, EXIT_ERROR, EXIT_OK
from presencesync.stack_tenant import stack_file_deployer


def fleet_command(args: argparse.Namespace) -> int:
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


def fleet_report_command(args: argparse.Namespace) -> int:
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
