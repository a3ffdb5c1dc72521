"""How long a client secret lives, and whether a limit (ours, or a tenant's app management policy) allows it.

One rule for the policy pack and the preflight: a secret lives from its start date (now, where it gives
none) to its end date; `secretExpiry: never` is the end date 2100-12-31 and so lives that long too. A
tenant's limit is an ISO 8601 duration (`passwordCredentialConfiguration.maxLifetime`, e.g. P180D, P1Y6M,
P4DT12H30M5S), counted on the calendar from the secret's start; a day that the month lacks is its last
day (P1Y from 29 February ends on 28 February), the stricter reading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from presencesync.rfc3339 import parse_rfc3339

_ISO_DURATION = re.compile(r"^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
                           r"(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


@dataclass(frozen=True)
class Duration:
    """An ISO 8601 duration: calendar years and months, then exact days and seconds."""

    text: str
    months: int
    days: int
    seconds: float

    def after(self, start: datetime) -> datetime:
        """The moment this duration after `start`, years and months on the calendar."""
        month = start.month - 1 + self.months
        year, month = start.year + month // 12, month % 12 + 1
        day = start.day
        while True:  # the 31st of a shorter month is its last day
            try:
                moved = start.replace(year=year, month=month, day=day)
                break
            except ValueError:
                day -= 1
        return moved + timedelta(days=self.days, seconds=self.seconds)

    def whole_days(self, start: datetime) -> int:
        """The number of whole days this duration holds from `start`."""
        return (self.after(start) - start).days


# Ours (the policy pack's): at most two years, counted as a tenant's limit is.
TWO_YEARS = Duration("P2Y", months=24, days=0, seconds=0)


def parse_duration(text: str) -> Duration | None:
    """An ISO 8601 duration as Graph writes `maxLifetime` (PnYnMnWnDTnHnMnS), or None if it is not one."""
    found = _ISO_DURATION.match(text.strip().upper())
    if not found:
        return None
    years, months, weeks, days, hours, minutes, seconds = found.groups()
    return Duration(text, int(years or 0) * 12 + int(months or 0), int(weeks or 0) * 7 + int(days or 0),
                    int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0))


@dataclass(frozen=True)
class SecretSpan:
    start: datetime
    end: datetime

    @property
    def lifetime(self) -> timedelta:
        return self.end - self.start

    def fits(self, limit: Duration) -> bool:
        return self.end <= limit.after(self.start)


def secret_span(start_date: str | None, end_date: str, now: datetime) -> SecretSpan:
    """A secret's span from its RFC 3339 start (None: now) and end dates."""
    return SecretSpan(parse_rfc3339(start_date) if start_date else now, parse_rfc3339(end_date))


def longest_end_date(limit: Duration, now: datetime) -> str:
    """The latest `secretExpiry` date a secret created today may have under `limit` (midnight UTC, so a
    secret created at any time of that day fits)."""
    today = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    return limit.after(today).strftime("%Y-%m-%dT%H:%M:%SZ")


def longest_rotation_days(limit: Duration, today: date) -> int:
    """The most days a rotation period may have under `limit`: each rotated secret lives two periods."""
    return limit.whole_days(datetime.combine(today, time(), UTC)) // 2
