"""A preflight finding, and the preflight's reads as its rules see them: a refused or failed read is one
warning line saying what could not be read, which permission it needs and how to check by hand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from presencesync.config import Settings
from presencesync.config_sync_users import SyncUser
from presencesync.graph import Answer, Call
from presencesync.untrusted import printable


@dataclass(frozen=True)
class Finding:
    stop: bool  # pulumi up, or Novus afterwards, would be refused: exit 1; else a warning
    topic: str
    text: str  # what was found, why it matters for Novus, what the customer's admin can do

    def line(self) -> str:
        # Policy names come from the tenant: printed escaped, no line break or CI command in them
        return printable(f"{'error' if self.stop else 'warning'}: preflight: {self.topic}: {self.text}")


# What each read needs (Graph v1.0 permission tables), and how an admin checks the same by hand.
NEEDS: dict[str, tuple[str, str]] = {
    "default policy": ("Policy.Read.All (or Policy.Read.ApplicationConfiguration)",
                       "Entra admin center > Enterprise apps > Application policies"),
    "own policies": ("Policy.Read.All and Application.Read.All",
                     "Entra admin center > Enterprise apps > Application policies"),
    "security defaults": ("Policy.Read.All", "Entra admin center > Overview > Properties > Security defaults"),
    "conditional access": ("Policy.Read.All", "Entra admin center > Protection > Conditional Access > Policies"),
    "sync user": ("User.Read.All", "Entra admin center > Users"),
    "sync user groups": ("User.Read.All (or GroupMember.Read.All)", "Entra admin center > Users > Groups"),
    "same name": ("Application.Read.All", "Entra admin center > App registrations > All applications"),
    "own application": ("Application.Read.All", "Entra admin center > App registrations"),
    "skype": ("Application.Read.All", "az ad sp show --id 00000004-0000-0ff1-ce00-000000000000"),
    "graph": ("Application.Read.All", "Entra admin center > Enterprise apps > Microsoft Graph"),
    "deployer roles": ("Application.Read.All (a user: User.Read)", "Entra admin center > Roles and admins"),
    "presence users": ("User.Read.All", "Microsoft 365 admin center > Reports > Usage > Microsoft Teams"),
}


def sync_users_of(settings: Settings) -> tuple[SyncUser, ...]:
    """Every sync user of the stack, in Novus's page order (the one-user form is a collection of one)."""
    return settings.sync_users or (settings.sync_user,)


# Each sync user has its own reads, named by kind and user principal name; NEEDS is by kind.
def user_read(upn: str) -> str:
    return f"sync user:{upn}"


def groups_read(upn: str) -> str:
    return f"sync user groups:{upn}"


class Reads:
    """The answers by read name; refused and failed reads become warning findings, each once."""

    def __init__(self, calls: Mapping[str, Call], answers: list[Answer]) -> None:
        self.calls = dict(calls)
        self.answers = dict(zip(calls, answers, strict=True))
        self.findings: list[Finding] = []
        self._said: set[str] = set()

    def status(self, name: str) -> int | None:
        answer = self.answers.get(name)
        return answer.status if answer else None

    def body(self, name: str) -> dict[str, Any] | None:
        """The answer's body when it succeeded; None (said once) when refused or failed, or when not found."""
        answer = self.answers.get(name)
        if answer is None:
            return None
        if 200 <= answer.status < 300:
            return answer.body
        if answer.status != 404 and name not in self._said:
            self._said.add(name)
            self.findings.append(Finding(False, "not read", self._why(name, answer)))
        return None

    def value(self, name: str) -> list[dict[str, Any]] | None:
        body = self.body(name)
        return None if body is None else list(body.get("value") or [])

    def _why(self, name: str, answer: Answer) -> str:
        what = self.calls[name].what
        permission, by_hand = NEEDS[name.split(":", 1)[0]]
        error = answer.body.get("error") or {}
        if answer.status in (401, 403):
            return (f"the deployer may not read {what} (Graph answered {answer.status} {error.get('code', '')}); "
                    f"grant it {permission}, or check by hand: {by_hand}")
        if answer.status == 429:
            return (f"{what} could not be read now (Graph throttles it; answered 429); run preflight again later, or "
                    f"check by hand: {by_hand}")
        return (f"{what} could not be read (Graph answered {answer.status} {error.get('code', '')}); check by hand: "
                f"{by_hand}")
