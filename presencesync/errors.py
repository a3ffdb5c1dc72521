"""The one family of errors a user can fix: each message names the key or step and says how to fix it.

The commands and `fleet` catch this type alone and print its lines; anything else is a bug, which
`--debug` shows with its traceback.
"""

from __future__ import annotations


class PresenceSyncError(Exception):
    """Something the user can fix; `lines` is the whole report, one problem a line."""

    @property
    def lines(self) -> list[str]:
        return str(self).splitlines() or [type(self).__name__]


class UserError(PresenceSyncError):
    """A wrong argument or input file; the message is the whole report."""


class StepFailedError(PresenceSyncError):
    """A post-deploy step found that something does not hold; `step` names it."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step


def missing_dependency(module: str | None) -> str:
    """The one line for a package that is not installed: presencesync was run outside its virtual environment."""
    return (f"error: the Python package {module or 'a dependency'} is not installed: run presencesync from the "
            "project's virtual environment (.venv/bin/presencesync or .venv/bin/python -m presencesync); set it up "
            "with: bash scripts/up.sh STACK, or python3 -m venv .venv && .venv/bin/pip install --require-hashes "
            "-r requirements.lock && .venv/bin/pip install --no-deps -e .")
