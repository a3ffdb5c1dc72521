"""Helpers the CI pipelines call (.github/workflows, azure-pipelines.yml): which stacks to run, in which
job, and as whom. Run from the project directory (the stack files and git history are read there).

  python scripts/pipeline.py changed BASE [GLOB]       JSON list of stacks a change since git ref BASE
                                                       touches (BASE of forty zeros, a new branch: every stack)
  python scripts/pipeline.py since-last-deploy [GLOB]  Azure DevOps: JSON list of stacks touched since the
                                                       last successful CI run of this pipeline on this branch
  python scripts/pipeline.py all [GLOB]                JSON list of every stack
  python scripts/pipeline.py due [GLOB]                JSON list of stacks whose secret rotation is due
  python scripts/pipeline.py shards LIST COUNT         GitHub matrix of at most COUNT shards:
                                                       [{"shard": "3", "stacks": "a,b"}, ...]
  python scripts/pipeline.py ado-matrix LIST COUNT     the same as an Azure DevOps matrix:
                                                       {"shard_3": {"SHARD": "3", "STACKS": "a,b"}, ...}
  python scripts/pipeline.py env STACK                 ARM_TENANT_ID=... and ARM_CLIENT_ID=... lines for the
                                                       stack's tenant
  python scripts/pipeline.py post-deploy-check STACKS  post-deploy --check for each stack (comma-separated) as
                                                       its own tenant; every one runs; exit 1 if any failed,
                                                       else 2 if any drifted

A stack file change touches that stack; a change to anything the program reads (code, Pulumi.yaml,
requirements, the policy pack) touches every stack. Other files (docs, tests, workflows) touch none.
Every stack name is checked against Pulumi's own rule before it is printed (presencesync/stack_names.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from presencesync.errors import PresenceSyncError  # noqa: E402
from presencesync.fleet import deployer_env, find_stacks  # noqa: E402
from presencesync.project_config import stack_settings  # noqa: E402
from presencesync.rfc3339 import parse_rfc3339  # noqa: E402
from presencesync.stack_file import stack_path  # noqa: E402
from presencesync.stack_names import check_stack_name  # noqa: E402

SHARED = ("__main__.py", "Pulumi.yaml", "requirements.txt", "requirements.lock", "presencesync/", "policy/")
MAX_JOBS = 256  # GitHub Actions runs at most 256 jobs from one matrix
# A rotation counts as due for this many days after its first day, so runs missed on a few nights
# (a failed run, an outage) still rotate; a stack already rotated just shows no changes.
DUE_WINDOW = timedelta(days=7)
NOTICE_WINDOW = timedelta(days=30)  # post-deploy --check calls a secret this close to its end drift
EXIT_DRIFT = 2


class PipelineError(PresenceSyncError):
    """A helper's input or an answer it relies on is unusable; one line naming it."""


def touched_stacks(changed_files: list[str], all_stacks: list[str]) -> list[str]:
    if any(f == s or (s.endswith("/") and f.startswith(s)) for f in changed_files for s in SHARED):
        return all_stacks
    named = {f[len("Pulumi."):-len(".yaml")] for f in changed_files
             if f.startswith("Pulumi.") and f.endswith(".yaml") and "/" not in f}
    return [s for s in all_stacks if s in named]  # a deleted stack file is not deployed (nor destroyed)


def changed_since(base: str, stacks: list[str]) -> list[str]:
    diff = subprocess.run(["git", "diff", "--name-only", f"{base}...HEAD"], check=False, capture_output=True,
                          text=True)
    if diff.returncode != 0:
        reason = (diff.stderr.strip().splitlines() or ["no message"])[-1]
        raise PipelineError(f"git diff {base}...HEAD failed ({reason}); fetch the full history (fetch-depth: 0) "
                            "so the base commit is there")
    return touched_stacks(diff.stdout.split(), stacks)


def last_deployed_commit(environ: dict[str, str]) -> str | None:
    """The commit of this pipeline's last successful CI run on this branch, from the Azure DevOps Builds
    REST API (Builds - List: definitions, branchName, resultFilter, reasonFilter, queryOrder, $top), with
    the job's System.AccessToken; None when there is none. Scheduled and manual runs do not count: they
    deploy only the stacks due for rotation, not what was pushed."""
    import requests

    missing = [k for k in ("SYSTEM_COLLECTIONURI", "SYSTEM_TEAMPROJECT", "SYSTEM_DEFINITIONID", "BUILD_SOURCEBRANCH",
                           "SYSTEM_ACCESSTOKEN") if not environ.get(k)]
    if missing:
        raise PipelineError(f"since-last-deploy needs {', '.join(missing)}; map SYSTEM_ACCESSTOKEN: "
                            "$(System.AccessToken) into the step's env")
    query = urlencode({"definitions": environ["SYSTEM_DEFINITIONID"], "branchName": environ["BUILD_SOURCEBRANCH"],
                       "resultFilter": "succeeded", "reasonFilter": "individualCI,batchedCI",
                       "queryOrder": "finishTimeDescending", "$top": "1", "api-version": "7.1"})
    url = f"{environ['SYSTEM_COLLECTIONURI'].rstrip('/')}/{environ['SYSTEM_TEAMPROJECT']}/_apis/build/builds?{query}"
    what = "asking Azure DevOps for the last successful deployment"
    try:
        answer = requests.get(url, headers={"Authorization": f"Bearer {environ['SYSTEM_ACCESSTOKEN']}"}, timeout=30)
    except requests.RequestException as error:
        raise PipelineError(f"{what} failed: {type(error).__name__}") from None
    if answer.status_code != 200:
        raise PipelineError(f"{what} failed: HTTP {answer.status_code}; the project's build service needs "
                            "'View builds' on this pipeline")
    try:
        builds = answer.json()["value"]
        commit = builds[0]["sourceVersion"] if builds else None
    except (ValueError, KeyError, IndexError, TypeError):
        raise PipelineError(f"{what}: the answer is not a list of builds") from None
    if commit is not None and not (isinstance(commit, str) and len(commit) == 40
                                   and all(c in "0123456789abcdef" for c in commit)):
        raise PipelineError(f"{what}: sourceVersion {str(commit)[:60]!r} is not a commit ID")
    return commit


def since_last_deploy(stacks: list[str], environ: dict[str, str]) -> list[str]:
    """Every stack touched since the last successful deployment: nothing is skipped when several commits
    arrive at once or a run failed. No successful run yet, or its commit gone from history: every stack."""
    commit = last_deployed_commit(environ)
    if commit is None:
        print("pipeline.py: no successful deployment yet: every stack", file=sys.stderr)
        return stacks
    known = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], check=False, capture_output=True)
    if known.returncode != 0:
        print(f"pipeline.py: the last deployed commit {commit} is not in this history: every stack", file=sys.stderr)
        return stacks
    return changed_since(commit, stacks)


def due_stacks(project_dir: Path, stacks: list[str], now: datetime) -> list[str]:
    """The stacks whose client secret schedule (presencesync.client_secrets, as the program computes it
    from the stack's own config) brought a new secret within DUE_WINDOW, or whose secret Novus should
    hold ends within NOTICE_WINDOW. A stack whose config cannot be read is listed too: its run fails
    visibly in the report instead of its rotation being skipped in silence."""
    due = []
    for stack in stacks:
        path = stack_path(stack, project_dir)
        try:
            plan = stack_settings(path, stack, now)[0].client_secrets
            before = stack_settings(path, stack, now - DUE_WINDOW)[0].client_secrets
        except PresenceSyncError as error:
            print(f"pipeline.py: {stack}: {error.lines[0]}", file=sys.stderr)
            due.append(stack)
            continue
        rotated = {s.name: s.keepers for s in plan.secrets} != {s.name: s.keepers for s in before.secrets}
        ending = parse_rfc3339(plan.current.end_date) - now < NOTICE_WINDOW
        if rotated or ending:
            due.append(stack)
    return due


def shard_of(stack: str, count: int) -> int:
    """A stack's shard by a hash of its name alone: the same shard in every run (not by list position)."""
    return int.from_bytes(hashlib.sha256(stack.encode()).digest()[:8], "big") % count


def shards(stacks: list[str], count: int) -> list[tuple[int, list[str]]]:
    """The non-empty shards, at most `count`, each stack in exactly one."""
    groups: dict[int, list[str]] = {}
    for stack in stacks:
        groups.setdefault(shard_of(stack, count), []).append(stack)
    return sorted(groups.items())


def post_deploy_check(stacks: list[str], project_dir: Path, environ: dict[str, str]) -> int:
    """`post-deploy --check` for every stack, each with its own tenant and deployer (deployer_env), going
    on past a failing one; 1 if any failed, else 2 if any drifted, else 0."""
    worst = 0
    for stack in stacks:
        try:
            env = {**environ, **deployer_env(stack, project_dir, environ)}
        except PresenceSyncError as error:
            print(f"post-deploy --check {stack}: {error.lines[0]}", file=sys.stderr)
            worst = 1
            continue
        done = subprocess.run([sys.executable, "-m", "presencesync", "post-deploy", "--stack", stack, "--check"],
                              env=env, check=False)
        print(f"post-deploy --check {stack}: exit {done.returncode}", file=sys.stderr)
        if done.returncode != 0:
            worst = 1 if done.returncode != EXIT_DRIFT or worst == 1 else EXIT_DRIFT
    return worst


def _stack_list(text: str) -> list[str]:
    try:
        stacks = json.loads(text)
    except ValueError:
        raise PipelineError("LIST is not JSON; pass what `pipeline.py changed` or `all` printed") from None
    if not isinstance(stacks, list) or not all(isinstance(s, str) for s in stacks):
        raise PipelineError("LIST is not a JSON list of stack names")
    return [check_stack_name(s) for s in stacks]


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_JOBS:
        raise PipelineError(f"shard count {text[:20]!r} is not a whole number from 1 to {MAX_JOBS} (GitHub runs at "
                            "most 256 jobs from one matrix); set PRESENCESYNC_SHARDS to e.g. 16")
    return int(text)


ARGUMENTS = {"changed": (1, 2), "since-last-deploy": (0, 1), "all": (0, 1), "due": (0, 1), "shards": (2, 2),
             "ado-matrix": (2, 2), "env": (1, 1), "post-deploy-check": (1, 1)}  # command: (fewest, most)


def run(command: str, args: list[str]) -> int:
    project = Path.cwd()
    glob = args[0] if args else "*"
    if command == "changed":
        stacks = find_stacks(project, args[1] if len(args) > 1 else "*")
        print(json.dumps(stacks if set(args[0]) == {"0"} else changed_since(args[0], stacks)))
    elif command == "since-last-deploy":
        print(json.dumps(since_last_deploy(find_stacks(project, glob), dict(os.environ))))
    elif command == "all":
        print(json.dumps(find_stacks(project, glob)))
    elif command == "due":
        print(json.dumps(due_stacks(project, find_stacks(project, glob), datetime.now(UTC))))
    elif command == "shards":
        groups = shards(_stack_list(args[0]), _count(args[1]))
        print(json.dumps([{"shard": str(n), "stacks": ",".join(group)} for n, group in groups]))
    elif command == "ado-matrix":
        groups = shards(_stack_list(args[0]), _count(args[1]))
        print(json.dumps({f"shard_{n}": {"SHARD": str(n), "STACKS": ",".join(group)} for n, group in groups}))
    elif command == "env":
        env = deployer_env(check_stack_name(args[0]), project, os.environ)
        print("\n".join(f"{k}={v}" for k, v in env.items()))
    else:  # post-deploy-check
        return post_deploy_check([check_stack_name(s) for s in args[0].split(",") if s], project, dict(os.environ))
    return 0


def main(argv: list[str]) -> int:
    fewest, most = ARGUMENTS.get(argv[0], (-1, -1)) if argv else (-1, -1)
    if not fewest <= len(argv) - 1 <= most or fewest < 0:
        print(__doc__, file=sys.stderr)
        return 64
    try:
        return run(argv[0], argv[1:])
    except PresenceSyncError as error:
        print(f"error: {error.lines[0]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
