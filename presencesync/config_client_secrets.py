"""Reading the client secrets' keys (secretExpiry, or secretRotationDays and secretRotationOffsetDays) into
the plan of secrets a stack keeps, with the single secret's end date."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time

from presencesync.client_secrets import SecretPlan, rotating_secrets, single_secret
from presencesync.config_keys import DEFAULT_SECRET_EXPIRY
from presencesync.config_values import Reader
from presencesync.rfc3339 import format_rfc3339
from presencesync.untrusted import excerpt

ROTATION_DAYS = (31, 365)  # above the 30-day expiry warning; two periods stay within two years
NEVER_EXPIRES = "2100-12-31T00:00:00Z"  # what the guide's CLI path uses for "Never"
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?")
# An unquoted YAML date or timestamp reaches the program as Go's time.Time.String() text,
# e.g. 2027-01-01 00:00:00 +0000 UTC: the CLI's YAML reader makes it a time and prints it so.
_GO_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?) ([+-]\d{2})(\d{2}) \S+")


def read_client_secrets(r: Reader, now: datetime) -> SecretPlan | None:
    rotation = r.optional("secretRotationDays")
    if rotation is not None:
        low, high = ROTATION_DAYS
        if not rotation.isdigit() or not low <= int(rotation) <= high:
            r.problem("secretRotationDays", f"'{excerpt(rotation)}' is not a whole number of days from {low} to "
                      f"{high}; use e.g. 180 (or 0 for no rotation)")
            return None
        if r.optional("secretExpiry") is not None:
            r.problem("secretRotationDays", "cannot be combined with presencesync:secretExpiry (rotated secrets "
                      "live two periods); remove one of the two keys")
            return None
        offset = r.optional("secretRotationOffsetDays") or "0"
        if not offset.isdigit() or int(offset) >= int(rotation):
            r.problem("secretRotationOffsetDays", f"'{excerpt(offset)}' is not a whole number of days from 0 to "
                      f"{int(rotation) - 1} (below secretRotationDays); new-tenant writes one, or remove the key")
            return None
        return rotating_secrets(now.astimezone(UTC).date(), int(rotation), int(offset))
    if r.optional("secretRotationOffsetDays") is not None:
        r.problem("secretRotationOffsetDays", "applies only with presencesync:secretRotationDays; remove it")
    expiry = r.optional("secretExpiry") or DEFAULT_SECRET_EXPIRY
    end_date = _secret_end_date(expiry, now)
    if end_date is None:
        r.problem("secretExpiry", f"'{excerpt(expiry)}' is not 1y, 2y, never or an RFC 3339 date in the future "
                  "(e.g. 2027-06-30T00:00:00Z); set one of those")
        return None
    return single_secret(expiry, end_date)


def _secret_end_date(expiry: str, now: datetime) -> str | None:
    """The client secret's end date (RFC 3339, UTC) for a configured expiry, or None when invalid.

    Relative expiries count from the start of today (UTC), so every run on one day agrees; the
    program keeps the secret's first end date afterwards (see tenant.py).
    """
    today = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    if expiry == "never":
        return NEVER_EXPIRES
    if expiry in ("1y", "2y"):
        return format_rfc3339(_add_years(today, int(expiry[0])))
    if go_time := _GO_TIME.fullmatch(expiry):
        day, clock, hours, minutes = go_time.groups()
        expiry = f"{day}T{clock}{hours}:{minutes}"
    if not _RFC3339.fullmatch(expiry):
        return None
    try:
        when = datetime.fromisoformat(expiry.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when <= now:
        return None
    return format_rfc3339(when)


def _add_years(day: datetime, years: int) -> datetime:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, month=3, day=1)
