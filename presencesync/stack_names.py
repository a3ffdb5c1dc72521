"""The stack names Pulumi accepts.

A stack's name comes from its file name, `Pulumi.<stack>.yaml`, which a pull request chooses, and
pipelines hand it to scripts and commands. The Pulumi CLI accepts a stack name of 1 to 100 letters,
digits, `-`, `_` and `.` (pulumi/pulumi sdk/go/common/tokens/stack_name.go, `ParseStackName`, which
both backends' `ValidateStackName` call). A file whose name is outside that set could not be a stack,
and its name could be a command in a script (`Pulumi.acme$(id).yaml`), so listing the stacks
(`fleet.find_stacks`, which the commands and scripts/pipeline.py use) refuses it.
"""

from __future__ import annotations

import re

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

