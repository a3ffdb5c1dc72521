"""Helpers the CI pipelines call (.github/workflows, azure-pipelines.yml): which stacks to run, and as whom.

  python scripts/pipeline.py changed BASE [GLOB]  JSON list of stacks a change since git ref BASE touches
                                                  (BASE of forty zeros, a new branch: every stack)
  python scripts/pipeline.py all [GLOB]           JSON list of every stack
  python scripts/pipeline.py ado-matrix LIST      an Azure DevOps matrix ({"<stack>": {"STACK": ...}}) from a JSON list
  python scripts/pipeline.py csv LIST             the JSON list as a comma-separated list, for fleet --stacks
  python scripts/pipeline.py env STACK            ARM_TENANT_ID=... and ARM_CLIENT_ID=... lines for the stack's tenant

A stack file change touches that stack; a change to anything the program reads (code, Pulumi.yaml,
requirements, the policy pack) touches every stack. Other files (docs, tests, workflows) touch none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from presencesync.errors import PresenceSyncError  # noqa: E402
from presencesync.fleet import deployer_env, find_stacks  # noqa: E402

SHARED = ("__main__.py", "Pulumi.yaml", "requirements.txt", "presencesync/", "policy/")


def touched_stacks(changed_files: list[str], all_stacks: list[str]) -> list[str]:
    if any(f == s or (s.endswith("/") and f.startswith(s)) for f in changed_files for s in SHARED):
        return all_stacks
    named = {f[len("Pulumi."):-len(".yaml")] for f in changed_files
             if f.startswith("Pulumi.") and f.endswith(".yaml") and "/" not in f}
    return [s for s in all_stacks if s in named]  # a deleted stack file is not deployed (nor destroyed)


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    if command == "changed":
        pattern = args[1] if len(args) > 1 else "*"
        stacks = find_stacks(ROOT, pattern)
        if set(args[0]) == {"0"}:  # a push that creates a branch has no "before": every stack is touched
            print(json.dumps(stacks))
            return 0
        diff = subprocess.run(["git", "diff", "--name-only", f"{args[0]}...HEAD"], cwd=ROOT, check=False,
                              capture_output=True, text=True)
        if diff.returncode != 0:
            reason = (diff.stderr.strip().splitlines() or ["no message"])[-1]
            raise SystemExit(f"error: git diff {args[0]}...HEAD failed ({reason}); fetch the full history "
                             "(fetch-depth: 0) so the base commit is there")
        print(json.dumps(touched_stacks(diff.stdout.split(), stacks)))
    elif command == "all":
        print(json.dumps(find_stacks(ROOT, args[0] if args else "*")))
    elif command == "ado-matrix":
        print(json.dumps({stack: {"STACK": stack} for stack in json.loads(args[0])}))
    elif command == "env":
        try:
            print("\n".join(f"{k}={v}" for k, v in deployer_env(args[0], ROOT, os.environ).items()))
        except PresenceSyncError as error:
            raise SystemExit(f"error: {error}") from None
    elif command == "csv":
        print(",".join(json.loads(args[0])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
