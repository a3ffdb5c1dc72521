"""Which client secrets a stack keeps, and when each one is replaced.

Two ways, chosen by config:
- a single secret with a fixed end date (`secretExpiry`), replaced only when that setting changes;
- rotation (`secretRotationDays` = P): two secrets in slots a and b. Time is cut into periods of P
  days counted from 1970-01-01 (UTC) plus the stack's offset (`secretRotationOffsetDays`, 0 to P-1; 0 when
  not set, which is the schedule every stack had before offsets); period n gives slot n % 2 a new secret
  that lives two periods. Offsets spread a fleet's rotations over the period: `new-tenant` derives each
  new stack's from its tenant ID (`spread_offset`), so stacks with the same P rotate on different days.
  So at any moment the newer secret has between P and 2P days left, the older between 0 and P, and
  a slot is replaced exactly when its secret expires. The schedule is a function of the date alone:
  the same day gives the same plan, and the plan changes only on the first day of a period.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

EPOCH = date(1970, 1, 1)
SINGLE_SECRET = "client-secret"


@dataclass(frozen=True)
class ClientSecret:
    name: str  # the Pulumi resource name
    start_date: str | None  # RFC 3339; None lets Entra ID start it now
    end_date: str  # RFC 3339
    keepers: dict[str, str]  # a change here replaces the secret (rotate_when_changed)
    current: bool  # the one Novus should hold
    end_date_fixed_at_creation: bool  # a relative expiry: keep the first end date (ignore_changes)


@dataclass(frozen=True)
class SecretPlan:
    secrets: tuple[ClientSecret, ...]
    expiry: str | None  # the single secret's configured expiry (1y, 2y, never or a date); None with rotation
    rotation_days: int | None  # the rotation period; None for a single secret
    next_rotation: str | None  # RFC 3339 date of the next new secret, with rotation

    @property
    def current(self) -> ClientSecret:
        return next(s for s in self.secrets if s.current)

    @property
    def previous(self) -> ClientSecret | None:
        return next((s for s in self.secrets if not s.current), None)


def single_secret(expiry: str, end_date: str) -> SecretPlan:
    """One secret ending `end_date`; changing `secretExpiry` (not the day) replaces it."""
    return SecretPlan((ClientSecret(SINGLE_SECRET, None, end_date, {"secretExpiry": expiry}, current=True,
                                    end_date_fixed_at_creation=expiry in ("1y", "2y")),), expiry, None, None)


def rotating_secrets(today: date, period_days: int, offset_days: int = 0) -> SecretPlan:
    """The two overlapping secrets for `today` with a rotation period of `period_days`, the periods starting
    `offset_days` (0 to period_days - 1) after the epoch's."""
    period = ((today - EPOCH).days - offset_days) // period_days
    secrets = []
    for generation in (period - 1, period):
        secrets.append(ClientSecret(
            name=f"{SINGLE_SECRET}-{'ab'[generation % 2]}",
            start_date=_day(offset_days + generation * period_days),
            end_date=_day(offset_days + (generation + 2) * period_days),
            keepers={"rotationDays": str(period_days), "generation": str(generation)},
            current=generation == period,
            end_date_fixed_at_creation=False,
        ))
    return SecretPlan(tuple(sorted(secrets, key=lambda s: s.name)), None, period_days,
                      _day(offset_days + (period + 1) * period_days))


def spread_offset(tenant_id: str, period_days: int) -> int:
    """A new stack's rotation offset: the same for the same tenant and period, spread evenly across tenants."""
    digest = hashlib.sha256(tenant_id.lower().encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") % period_days


def _day(days_since_epoch: int) -> str:
    when = datetime.combine(EPOCH + timedelta(days=days_since_epoch), time(), UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
