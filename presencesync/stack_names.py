"""The stacks a project directory holds, by the names Pulumi accepts.

A stack's name comes from its file name, `Pulumi.<stack>.yaml`, which a pull request chooses, and
pipelines hand it to scripts and commands. The Pulumi CLI accepts a stack name of 1 to 100 letters,
digits, `-`, `_` and `.` (pulumi/pulumi sdk/go/common/tokens/stack_name.go, `ParseStackName`, which
both backends' `ValidateStackName` call). A file whose name is outside that set could not be a stack,
and its name could be a command in a script (`Pulumi.acme$(id).yaml`), so listing the stacks refuses it.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from presencesync.errors import PresenceSyncError

STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


class StackNameError(PresenceSyncError):
    """A stack file whose name Pulumi would refuse; the message names it and the fix."""


def check_stack_name(name: str) -> str:
    """`name` itself if Pulumi accepts it as a stack name, else StackNameError (the name escaped)."""
    if not STACK_NAME.fullmatch(name):
        file_name = f"Pulumi.{name}.yaml"
        raise StackNameError(f"stack file {file_name!r}: a stack name is 1 to 100 letters, digits, '-', '_' or '.' "
                             "(Pulumi's own rule); rename or remove the file")
    return name


def find_stacks(project_dir: Path, pattern: str) -> list[str]:
    """The stacks with a `Pulumi.<stack>.yaml` in `project_dir` whose names match `pattern`, a glob or
    several separated by commas; StackNameError if any stack file there has a name Pulumi refuses."""
    files = project_dir.glob("Pulumi.*.yaml")
    names = sorted(check_stack_name(p.name[len("Pulumi."):-len(".yaml")]) for p in files)
    globs = [glob.strip() for glob in pattern.split(",") if glob.strip()]
    return [name for name in names if any(fnmatch.fnmatchcase(name, glob) for glob in globs)]
