"""Many tenants at once: the repository's stacks through the Pulumi Automation API, N at a time.

Each tenant runs in its own local workspace on the project directory, as `pulumi` on PATH would run
it by hand. A failing tenant is reported and the others go on. `drift` is what the nightly job does
per stack: `pulumi preview --refresh --expect-no-changes`, then the read-only post-deploy check.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from presencesync.engine_events import EngineLog
from presencesync.errors import PresenceSyncError
from presencesync.project_config import stack_settings
from presencesync.stack_file import stack_path
from presencesync.stack_names import check_stack_name
from presencesync.stack_tenant import StackTenantError, stack_file_deployer
from presencesync.untrusted import excerpt, is_guid

# From this CLI version a failing after-hook (post-deploy) fails `pulumi up`; before, it was only a
# warning and `up` succeeded with an unproven tenant. scripts/up.sh holds the same number.
MINIMUM_CLI = (3, 238, 0)
DEFAULT_PARALLEL = 4  # low enough to stay under Graph's per-tenant-app throttling with post-deploy running
EXPECTED_NO_CHANGES = 7  # the CLI's exit code when --expect-no-changes finds changes (CLI 3.226.1+)
OK, CHANGES, DRIFTED, FAILED = "ok", "changes", "drifted", "failed"
# The stack outputs a drift report carries for the fleet page: dates only, never a secret value.
SECRET_DATES = ("clientSecretEndDate", "previousClientSecretEndDate", "nextSecretRotation")


@dataclass(frozen=True)
class TenantRun:
    stack: str
    result: str  # ok, changes (preview/up), drifted (drift), failed
    changes: dict[str, int] = field(default_factory=dict)  # operation -> count, "same" left out
    seconds: float = 0.0
    details: tuple[str, ...] = ()  # why it failed or drifted, one line each
    # drift: SECRET_DATES from the stack outputs, and syncUserPasswordExpiry (user name to date, never or unknown)
    secret_dates: dict[str, Any] = field(default_factory=dict)
    notices: tuple[str, ...] = ()  # what an admin must do now, e.g. enter a new client secret in Novus

    @property
    def change_count(self) -> int:
        return sum(self.changes.values())


class CliError(PresenceSyncError):
    """No usable `pulumi` on PATH; the message says what to install."""


def require_cli() -> None:
    """Fail once, up front, when the `pulumi` on PATH is missing or older than MINIMUM_CLI."""
    wanted = ".".join(map(str, MINIMUM_CLI))
    fix = f"install Pulumi CLI {wanted} or newer (https://www.pulumi.com/docs/install/, or bash scripts/up.sh)"
    try:
        done = subprocess.run(["pulumi", "version"], capture_output=True, text=True, timeout=60, check=False)
    except (FileNotFoundError, PermissionError):
        raise CliError(f"no pulumi CLI on PATH; {fix}") from None
    found = re.match(r"v?(\d+)\.(\d+)\.(\d+)", done.stdout.strip())
    if done.returncode != 0 or not found:
        raise CliError(f"pulumi version failed ({_first_line(done.stderr or done.stdout) or 'no output'}); {fix}")
    if tuple(int(part) for part in found.groups()) < MINIMUM_CLI:
        raise CliError(f"pulumi CLI {found.group(0).lstrip('v')} is too old: a failing post-deploy would not fail "
                       f"pulumi up; {fix}")


def find_stacks(project_dir: Path, pattern: str) -> list[str]:
    """The stacks with a `Pulumi.<stack>.yaml` in `project_dir` whose names match `pattern`, a glob or
    several separated by commas; StackNameError for a stack file whose name Pulumi would refuse."""
    names = sorted(check_stack_name(p.name[len("Pulumi."):-len(".yaml")]) for p in project_dir.glob("Pulumi.*.yaml"))
    globs = [glob.strip() for glob in pattern.split(",") if glob.strip()]
    return [name for name in names if any(fnmatch.fnmatchcase(name, glob) for glob in globs)]


def tenant_env(stack: str, project_dir: Path) -> dict[str, str]:
    """ARM_TENANT_ID from the stack's azuread:tenantId (required), ARM_CLIENT_ID from azuread:clientId where set."""
    deployer = stack_file_deployer(stack, project_dir, {})
    return {key: deployer.env[key] for key in ("ARM_TENANT_ID", "ARM_CLIENT_ID") if deployer.env.get(key)}


def deployer_env(stack: str, project_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The tenant the stack names (azuread:tenantId) and the deployer app it names (azuread:clientId), else the
    environment's ARM_CLIENT_ID: one process (a fleet run, a pipeline job) signs in to each tenant in turn."""
    try:
        deployer = stack_file_deployer(stack, project_dir, environ)
    except StackTenantError as error:
        raise CliError(str(error)) from None
    if not deployer.client_id:
        raise CliError(f"ARM_CLIENT_ID is not set and Pulumi.{stack}.yaml sets no azuread:clientId; give the "
                       "deployer app's ID in the pipeline's variables (or pulumi config set azuread:clientId <GUID>)")
    if not is_guid(deployer.client_id):  # printed into $GITHUB_ENV and ##vso lines by the pipelines: a GUID only
        raise CliError(f"ARM_CLIENT_ID '{excerpt(deployer.client_id)}' is not an application (client) ID (GUID); "
                       "give the deployer app's ID in the pipeline's variables")
    return {"ARM_TENANT_ID": deployer.tenant_id, "ARM_CLIENT_ID": deployer.client_id}


def slowest_first(stacks: list[str], last_report: Path) -> list[str]:
    """Start the tenants that took longest last time first (and new ones before all): a slow tenant
    started last would keep the whole run waiting after the others are done."""
    try:
        last = {t["stack"]: float(t["seconds"]) for t in json.loads(last_report.read_text(encoding="utf-8"))["tenants"]}
    except (OSError, ValueError, KeyError, TypeError):
        last = {}
    return sorted(stacks, key=lambda stack: -last.get(stack, float("inf")))


def run_fleet(stacks: list[str], run_one: Callable[[str], TenantRun], *, parallel: int,
              say: Callable[[str], None], order: list[str] | None = None) -> list[TenantRun]:
    """Run `run_one` for every stack, `parallel` at a time, started in `order`; a progress line per
    finished tenant. Results come back in the order of `stacks`."""
    results: dict[str, TenantRun] = {}
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        running = {pool.submit(_timed, run_one, stack): stack for stack in order or stacks}
        for done in as_completed(running):
            result = done.result()
            results[result.stack] = result
            reason = f": {result.details[0]}" if result.details else ""
            say(f"[{len(results)}/{len(stacks)}] {result.stack}: {result.result}, {result.change_count} change(s), "
                f"{result.seconds:.1f} s{reason}")
    return [results[stack] for stack in stacks]


def _timed(run_one: Callable[[str], TenantRun], stack: str) -> TenantRun:
    started = time.monotonic()
    try:
        result = run_one(stack)
    except Exception as error:  # one tenant's surprise must not stop the others
        result = TenantRun(stack, FAILED, details=(f"unexpected {type(error).__name__}: {_first_line(str(error))}",))
    return TenantRun(result.stack, result.result, result.changes, round(time.monotonic() - started, 2),
                     result.details, result.secret_dates, result.notices)


def summary_table(results: list[TenantRun]) -> list[str]:
    width = max([len("tenant"), *(len(r.stack) for r in results)])
    lines = [f"{'tenant':<{width}}  {'result':<8}  {'changes':>7}  {'seconds':>7}"]
    lines += [f"{r.stack:<{width}}  {r.result:<8}  {r.change_count:>7}  {r.seconds:>7.1f}" for r in results]
    return lines


def write_report(path: Path, action: str, parallel: int, results: list[TenantRun], seconds: float) -> None:
    counts = {outcome: sum(r.result == outcome for r in results) for outcome in (OK, CHANGES, DRIFTED, FAILED)}
    report = {"action": action, "parallel": parallel, "finished": datetime.now(UTC).isoformat(timespec="seconds"),
              "wallSeconds": round(seconds, 2), "counts": counts,
              "tenants": [{"stack": r.stack, "result": r.result, "changes": r.changes, "seconds": r.seconds,
                           "details": list(r.details), "notices": list(r.notices), **r.secret_dates}
                          for r in results]}
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def stack_runner(action: str, project_dir: Path, policy_pack: Path | None) -> Callable[[str], TenantRun]:
    """What one tenant's run does, through the Automation API and the `pulumi` on PATH."""
    from pulumi import automation as auto  # imports grpc: only where needed

    def run_one(name: str) -> TenantRun:
        packs = [str(policy_pack)] if policy_pack else None
        log = EngineLog()
        try:
            # Each tenant runs as the deployer its stack names (pulumi and post-deploy alike).
            deployer = tenant_env(name, project_dir)
            env = {**os.environ, **deployer}
            stack = auto.select_stack(name, work_dir=str(project_dir),
                                      opts=auto.LocalWorkspaceOptions(env_vars=deployer))
            if action == "preview":
                return _changed(name, stack.preview(policy_packs=packs, on_event=log.on_event).change_summary, log)
            if action == "up":
                if refused := _preflight(name, stack, project_dir, env):  # before anything is created
                    return TenantRun(name, FAILED, details=refused)
                summary = stack.up(policy_packs=packs, on_event=log.on_event).summary
                return _changed(name, summary.resource_changes or {}, log)
            return _drift(name, stack, project_dir, env, log)
        except auto.CommandError as error:
            # The engine's first error names the resource and the provider's message; the CLI's own
            # line (often only its exit code) comes after it.
            cause = log.first_error()
            return TenantRun(name, FAILED, _real_changes(log.changes),
                             details=(*([cause] if cause else []), _cli_error(str(error))), notices=tuple(log.notices))
        except PresenceSyncError as error:
            return TenantRun(name, FAILED, _real_changes(log.changes), details=(_first_line(str(error)),))

    return run_one


def _changed(name: str, changes: Mapping[Any, int], log: EngineLog) -> TenantRun:
    real = _real_changes(changes)
    return TenantRun(name, CHANGES if real else OK, real, notices=tuple(log.notices))


def _real_changes(changes: Mapping[Any, int]) -> dict[str, int]:
    """The operations that change something; keys may be the SDK's OpType (a str enum) or plain strings."""
    plain = {str(getattr(op, "value", op)): count for op, count in changes.items()}
    return {op: count for op, count in plain.items() if op != "same" and count}


def _preflight(name: str, stack: Any, project_dir: Path, env: Mapping[str, str]) -> tuple[str, ...]:
    """What the tenant would refuse, read with the stack's deployer: its lines when anything is refused."""
    from presencesync import preflight

    settings, _, _ = stack_settings(stack_path(name, project_dir), name, datetime.now(UTC))
    application = stack.outputs().get("applicationObjectId")  # the stack's own, whose name is no clash
    own = preflight.OwnApplication(True, str(application.value) if application else None)
    findings, _ = preflight.run(settings, own, now=datetime.now(UTC), env=env)
    return tuple(f.line() for f in findings) if any(f.stop for f in findings) else ()


def _drift(name: str, stack: Any, project_dir: Path, env: Mapping[str, str], log: EngineLog) -> TenantRun:
    from pulumi import automation as auto

    from presencesync import postdeploy
    from presencesync.stack_outputs import Deployed

    details: list[str] = []
    try:
        stack.preview(refresh=True, expect_no_changes=True, on_event=log.on_event)
    except auto.CommandError as error:
        if _exit_code(str(error)) != EXPECTED_NO_CHANGES:
            raise
        details.append("pulumi preview --refresh: the tenant differs from the stack")
    settings, _, _ = stack_settings(stack_path(name, project_dir), name, datetime.now(UTC))
    outputs = {key: output.value for key, output in stack.outputs().items()}
    dates: dict[str, Any] = {key: outputs[key] for key in SECRET_DATES if isinstance(outputs.get(key), str)}
    try:
        deployed = Deployed.from_outputs(outputs)
        expiries: dict[str, str] = {}
        details += postdeploy.post_deploy(settings, deployed, check=True, now=datetime.now(UTC),
                                          say=lambda _: None, env=env, password_expiry=expiries)
        dates["syncUserPasswordExpiry"] = expiries
    except Exception as error:  # a failed check keeps what the preview and the outputs told
        reason = _first_line(str(error)) if isinstance(error, PresenceSyncError) else \
            f"post-deploy check: unexpected {type(error).__name__}: {_first_line(str(error))}"
        return TenantRun(name, FAILED, _real_changes(log.changes), details=(reason, *details), secret_dates=dates)
    return TenantRun(name, DRIFTED if details else OK, _real_changes(log.changes), details=tuple(details),
                     secret_dates=dates)


def _exit_code(message: str) -> int | None:
    found = re.search(r"^\s*code: (-?\d+)", message, re.MULTILINE)
    return int(found.group(1)) if found else None


def _cli_error(message: str) -> str:
    """The CLI's own error line from a CommandError (its message carries the whole stdout and stderr)."""
    stderr = message.partition(" stderr: ")[2]
    errors = [line.strip() for line in stderr.splitlines() if line.strip().startswith("error:")]
    lines = errors or [line.strip() for line in stderr.splitlines() if line.strip()]
    return f"pulumi exited {_exit_code(message)}: {lines[-1] if lines else 'no message'}"


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]
